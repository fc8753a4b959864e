import * as fs from 'node:fs';
import * as path from 'node:path';
import { isImageFile } from './imageIO';
import { InputError } from '../masks/inputError';
import { naturalCompare } from '../masks/naturalOrder';

export interface ImageMaskPair {
  image: string;
  mask: string;
  stem: string;
}

/** Image stem: the file name without extension. */
export function stemOf(file: string): string {
  return path.basename(file, path.extname(file));
}

/** Lists images in a folder (not recursive), in natural name order (naturalOrder.ts); mask and suggestion sidecars are not images. */
export async function listImages(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch (err) {
    throw new InputError(dir, `cannot list the folder (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return names
    .filter((n) => isImageFile(n) && !/\.(mask|suggestion)\.png$/i.test(n) && !n.startsWith('.'))
    .sort(naturalCompare)
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
 * masks folder. Images without a mask are returned separately (they are not yet labelled), and so are masks
 * without an image (`orphans`: a typo or a moved image, for the caller to report). Two images with one stem
 * (`a.png` and `a.jpg`) and a mask for that stem are an error: the mask cannot say which picture it labels.
 */
export async function pairImagesWithMasks(
  imagesDir: string,
  masksDir: string,
): Promise<{ pairs: ImageMaskPair[]; unlabelled: string[]; orphans: string[] }> {
  const images = await listImages(imagesDir);
  let maskNames: Set<string>;
  try {
    maskNames = new Set(await fs.promises.readdir(masksDir));
  } catch (err) {
    throw new InputError(
      masksDir,
      `cannot list the masks folder (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
  }
  const pairs: ImageMaskPair[] = [];
  const unlabelled: string[] = [];
  const used = new Set<string>();
  const sameDir = path.resolve(imagesDir) === path.resolve(masksDir);
  const byStem = new Map<string, string[]>();
  for (const image of images) byStem.set(stemOf(image), [...(byStem.get(stemOf(image)) ?? []), image]);
  for (const image of images) {
    const stem = stemOf(image);
    const candidates = sameDir ? [`${stem}.mask.png`] : [`${stem}.mask.png`, `${stem}.png`];
    const found = candidates.find((c) => maskNames.has(c));
    const twins = byStem.get(stem) ?? [];
    if (found && twins.length > 1) {
      throw new InputError(
        path.join(masksDir, found),
        `${twins.map((t) => path.basename(t)).join(' and ')} share the stem "${stem}", so this mask could belong to either: rename one of the images (and its mask)`,
      );
    }
    if (found) {
      pairs.push({ image, mask: path.join(masksDir, found), stem });
      used.add(found);
    } else unlabelled.push(image);
  }
  const orphans = [...maskNames]
    .filter(
      (n) =>
        !used.has(n) &&
        !n.startsWith('.') &&
        (sameDir ? /\.mask\.png$/i.test(n) : /\.png$/i.test(n) && !/\.suggestion\.png$/i.test(n)),
    )
    .sort()
    .map((n) => path.join(masksDir, n));
  return { pairs, unlabelled, orphans };
}

/** One line naming masks that have no image beside them, or '' when there are none. */
export function orphanNote(orphans: string[], imagesDir: string): string {
  if (orphans.length === 0) return '';
  const shown = orphans
    .slice(0, 5)
    .map((o) => path.basename(o))
    .join(', ');
  return `${orphans.length} mask(s) have no image of the same stem in ${imagesDir} and were left out: ${shown}${orphans.length > 5 ? ', ...' : ''}`;
}
