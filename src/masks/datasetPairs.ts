import * as fs from 'node:fs';
import * as path from 'node:path';
import { isImageFile } from './imageIO';
import { InputError } from './inputError';

export interface ImageMaskPair {
  image: string;
  mask: string;
  stem: string;
}

/** Image stem: the file name without extension. */
export function stemOf(file: string): string {
  return path.basename(file, path.extname(file));
}

/** Lists images in a folder (not recursive), sorted by name; mask and suggestion sidecars are not images. */
export async function listImages(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch (err) {
    throw new InputError(dir, `cannot list the folder (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return names
    .filter((n) => isImageFile(n) && !/\.(mask|suggestion)\.png$/i.test(n) && !n.startsWith('.'))
    .sort()
    .map((n) => path.join(dir, n));
}

/** Expands a list of files and folders to image files. */
export async function expandImageArgs(items: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const item of items) {
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(item);
    } catch {
      throw new InputError(item, 'no such file or folder');
    }
    if (stat.isDirectory()) out.push(...(await listImages(item)));
    else out.push(item);
  }
  return out;
}

/**
 * Matches images to masks by file stem: for image `a.jpg` the mask is `a.png` or `a.mask.png` in the
 * masks folder. Images without a mask are returned separately (they are not yet labelled).
 */
export async function pairImagesWithMasks(imagesDir: string, masksDir: string): Promise<{ pairs: ImageMaskPair[]; unlabelled: string[] }> {
  const images = await listImages(imagesDir);
  let maskNames: Set<string>;
  try {
    maskNames = new Set(await fs.promises.readdir(masksDir));
  } catch (err) {
    throw new InputError(masksDir, `cannot list the masks folder (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const pairs: ImageMaskPair[] = [];
  const unlabelled: string[] = [];
  const sameDir = path.resolve(imagesDir) === path.resolve(masksDir);
  for (const image of images) {
    const stem = stemOf(image);
    const candidates = sameDir ? [`${stem}.mask.png`] : [`${stem}.mask.png`, `${stem}.png`];
    const found = candidates.find((c) => maskNames.has(c));
    if (found) pairs.push({ image, mask: path.join(masksDir, found), stem });
    else unlabelled.push(image);
  }
  return { pairs, unlabelled };
}
