// Where a mask editor's starting state comes from, besides the person's saved mask: an unreviewed suggestion
// file written by "Pre-label Folder", or a labelme JSON beside the image. Each returns null when there is
// nothing usable, so the editor simply does not offer it.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeMaskPng, FOLLOWS_KEY, MODEL_VERSION_KEY, pngText } from '../../io/maskIO';
import type { ClassInfo } from '../../masks/classList';
import type { MaskImage, RgbImage } from '../../masks/maskImage';
import { classListFromNames } from '../../formats/formatTypes';
import { labelmeLabels, labelmeToMask } from '../../formats/labelme';
import type { SuggestionState } from '../../protocol/editorProtocol';
import { suggestionPathFor } from './maskPath';

/** A mask offered before anything was saved: where it came from, and how many shapes were left out. */
export interface StartingMask {
  mask: MaskImage;
  source: string;
  skipped: number;
}

export function sha(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

/**
 * An unreviewed suggestion written by "Pre-label Folder" or "Propagate to Next Frames" (`*.suggestion.png`),
 * with the model version and the followed frame it records.
 */
export async function suggestionFile(maskFile: string, image: RgbImage): Promise<SuggestionState | null> {
  const file = suggestionPathFor(maskFile);
  let bytes: Uint8Array;
  try {
    bytes = await fs.promises.readFile(file);
  } catch {
    return null;
  }
  try {
    const m = decodeMaskPng(bytes, file);
    if (m.width !== image.width || m.height !== image.height) return null;
    const text = pngText(bytes);
    const version = Number(text[MODEL_VERSION_KEY]);
    const follows = text[FOLLOWS_KEY];
    return {
      state: 'ready',
      modelVersion: Number.isInteger(version) ? version : 0,
      trained: version > 0,
      classMap: m.data,
      confidence: null,
      file: path.basename(file),
      ...(follows ? { follows } : {}),
    };
  } catch {
    return null;
  }
}

/** A labelme JSON beside the image (`a.png` -> `a.json`) that describes this image, rasterised. */
export async function labelmeBeside(
  imageFile: string,
  image: RgbImage,
  classes: ClassInfo[],
): Promise<StartingMask | null> {
  const json = imageFile.replace(/\.[^.\/]+$/, '.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await fs.promises.readFile(json, 'utf8'));
  } catch {
    return null;
  }
  try {
    const known = classListFromNames(labelmeLabels(parsed));
    // Names in the palette keep their index; new names are appended after the palette's last class.
    const merged = [...classes];
    for (const c of known)
      if (!merged.some((m) => m.name === c.name) && c.index !== 0)
        merged.push({ ...c, index: Math.max(...merged.map((m) => m.index)) + 1 });
    const r = labelmeToMask(parsed, json, merged);
    if (r.mask.width !== image.width || r.mask.height !== image.height) return null;
    return { mask: r.mask, source: json, skipped: r.skipped.length };
  } catch (err) {
    // Not a labelme file for this image: it is simply not offered.
    console.error(`maskloop: ${json} is not usable as a starting mask: ${(err as Error).message}`);
    return null;
  }
}

export async function readMaskFile(file: string): Promise<{ mask: MaskImage; hash: string } | null> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return { mask: decodeMaskPng(bytes, file), hash: sha(bytes) };
}
