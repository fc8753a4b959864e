// Images in one folder, in natural name order (frame_2 before frame_10), are frames of a sequence: a frame's
// suggestion can follow a neighbouring frame's reviewed mask (the model process carries it along the optical
// flow). This finds those neighbours.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMaskFile, resolveMaskPath } from './maskPath';
import type { PairRef } from '../../protocol/modelProtocol';
import { naturalCompare } from '../../masks/naturalOrder';

const IMAGE_NAME = /\.(png|jpe?g|webp|tiff?|gif)$/i;

/**
 * Which frames a frame follows, nearest first, by their indices in `frames`: the one just before and the one
 * before that when the frame just before is reviewed; else the one just after and the one after that. The
 * second is listed only when reviewed too (it gives the model process carrying's track record).
 */
export function pickNeighbours(count: number, index: number, reviewed: (i: number) => boolean): number[] {
  for (const step of [-1, 1]) {
    const near = index + step;
    if (near < 0 || near >= count || !reviewed(near)) continue;
    const beyond = near + step;
    return beyond >= 0 && beyond < count && reviewed(beyond) ? [near, beyond] : [near];
  }
  return [];
}

/** The reviewed neighbours of `image` in its folder's sequence (see pickNeighbours), as image and mask paths. */
export async function reviewedNeighbours(image: string, maskTemplate: string, root: string): Promise<PairRef[]> {
  const dir = path.dirname(image);
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return [];
  }
  const frames = names
    .filter((n) => IMAGE_NAME.test(n) && !isMaskFile(path.join(dir, n), maskTemplate))
    .sort(naturalCompare)
    .map((n) => path.join(dir, n));
  const index = frames.indexOf(image);
  if (index < 0) return [];
  const masks = new Map<number, string>();
  const reviewed = (i: number): boolean => {
    try {
      const mask = resolveMaskPath(maskTemplate, frames[i], root);
      if (!fs.existsSync(mask)) return false;
      masks.set(i, mask);
      return true;
    } catch {
      return false;
    }
  };
  return pickNeighbours(frames.length, index, reviewed).map((i) => ({ image: frames[i], mask: masks.get(i) ?? '' }));
}
