// Images in one folder, in natural name order (frame_2 before frame_10), are frames of a sequence: a frame's
// suggestion can follow a neighbouring frame's reviewed mask (the model process carries it along the optical
// flow). This finds those neighbours.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMaskFile, resolveMaskPath } from './maskPath';
import { MAX_NEIGHBOURS, type PairRef } from '../../protocol/modelProtocol';
import { naturalCompare } from '../../masks/naturalOrder';

const IMAGE_NAME = /\.(png|jpe?g|webp|tiff?|gif)$/i;

/**
 * Which frames a frame follows, nearest first, by their indices in `frames`: the one just before, when it is
 * reviewed, and the reviewed frames before it without a gap; else the one just after and those after it. At
 * most `max`. The second gives the model process carrying's track record, and every pair of them teaches its
 * sequence head.
 */
export function pickNeighbours(
  count: number,
  index: number,
  reviewed: (i: number) => boolean,
  max = MAX_NEIGHBOURS,
): number[] {
  for (const step of [-1, 1]) {
    const out: number[] = [];
    for (let j = index + step; j >= 0 && j < count && out.length < max && reviewed(j); j += step) out.push(j);
    if (out.length > 0) return out;
  }
  return [];
}

/**
 * The frames of the sequence `image` belongs to: the images of its folder in natural name order, masks and
 * suggestions left out. Empty when the folder cannot be read.
 */
export async function sequenceFrames(image: string, maskTemplate: string): Promise<string[]> {
  const dir = path.dirname(image);
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => IMAGE_NAME.test(n) && !isMaskFile(path.join(dir, n), maskTemplate))
    .sort(naturalCompare)
    .map((n) => path.join(dir, n));
}

/** Where `image` stands in its sequence ("frame 12 of 40": index 11, count 40); null when it is alone. */
export async function framePosition(
  image: string,
  maskTemplate: string,
): Promise<{ index: number; count: number } | null> {
  const frames = await sequenceFrames(image, maskTemplate);
  const index = frames.indexOf(image);
  return index < 0 || frames.length < 2 ? null : { index, count: frames.length };
}

/** The reviewed neighbours of `image` in its folder's sequence (see pickNeighbours), as image and mask paths. */
export async function reviewedNeighbours(image: string, maskTemplate: string, root: string): Promise<PairRef[]> {
  const frames = await sequenceFrames(image, maskTemplate);
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

/** One frame to suggest: its index, the frame it follows, and the reviewed pair giving the track record. */
export interface PropagationStep {
  frame: number;
  follows: number;
  /** Two reviewed frames, the nearer first (the second's mask is carried onto the first); null: none. */
  record: [number, number] | null;
}

/**
 * The frames a propagation from reviewed frame `start` suggests: the next `n` unreviewed ones in order. Each
 * follows the frame before it. A reviewed frame on the way is not suggested: the chain goes on from its mask.
 * The track record is the last pair of neighbouring reviewed frames at or before the frame followed (a
 * suggestion is no truth to measure carrying against), or none.
 */
export function planPropagation(
  count: number,
  start: number,
  n: number,
  reviewed: (i: number) => boolean,
): PropagationStep[] {
  const steps: PropagationStep[] = [];
  let record: [number, number] | null = start > 0 && reviewed(start - 1) ? [start, start - 1] : null;
  for (let j = start + 1; j < count && steps.length < n; j++) {
    if (reviewed(j)) {
      if (reviewed(j - 1)) record = [j, j - 1];
      continue;
    }
    steps.push({ frame: j, follows: j - 1, record });
  }
  return steps;
}

/** Parses the number of frames asked for: a whole number from 1 to 10,000, or why not. */
export function framesAsked(text: string): number | string {
  const n = Number(text.trim());
  return Number.isInteger(n) && n >= 1 && n <= 10_000 ? n : 'a whole number of frames, from 1 to 10000';
}
