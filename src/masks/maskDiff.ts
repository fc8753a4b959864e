import type { MaskImage } from './maskImage';

/**
 * One edit of a mask, compact: the bounding box of the changed pixels and their values before and after,
 * row-major inside the box. Undo writes `before` back, redo writes `after`.
 */
export interface MaskDiff {
  x: number;
  y: number;
  width: number;
  height: number;
  before: Uint8Array;
  after: Uint8Array;
}

export interface Box {
  x0: number;
  y0: number;
  /** Exclusive. */
  x1: number;
  /** Exclusive. */
  y1: number;
}

export function emptyBox(): Box {
  return { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
}

export function isEmptyBox(box: Box): boolean {
  return box.x1 <= box.x0 || box.y1 <= box.y0;
}

export function growBox(box: Box, x0: number, y0: number, x1: number, y1: number): void {
  box.x0 = Math.min(box.x0, x0);
  box.y0 = Math.min(box.y0, y0);
  box.x1 = Math.max(box.x1, x1);
  box.y1 = Math.max(box.y1, y1);
}

/** Copies the pixels of a box out of a mask. */
export function cropMask(mask: MaskImage, box: Box): Uint8Array {
  const w = box.x1 - box.x0;
  const out = new Uint8Array(w * (box.y1 - box.y0));
  for (let y = box.y0; y < box.y1; y++)
    out.set(mask.data.subarray(y * mask.width + box.x0, y * mask.width + box.x1), (y - box.y0) * w);
  return out;
}

/**
 * The diff that turns `before` into `after` (same size), or null when they are equal. The box is shrunk to
 * the changed pixels, so a stroke that only touched a corner costs only that corner.
 */
export function diffMasks(before: MaskImage, after: MaskImage, within?: Box): MaskDiff | null {
  if (before.width !== after.width || before.height !== after.height)
    throw new Error('diffMasks: masks differ in size');
  const w = before.width;
  const area = within ?? { x0: 0, y0: 0, x1: w, y1: before.height };
  const box = emptyBox();
  for (let y = Math.max(0, area.y0); y < Math.min(before.height, area.y1); y++) {
    const row = y * w;
    for (let x = Math.max(0, area.x0); x < Math.min(w, area.x1); x++) {
      if (before.data[row + x] !== after.data[row + x]) growBox(box, x, y, x + 1, y + 1);
    }
  }
  if (isEmptyBox(box)) return null;
  return {
    x: box.x0,
    y: box.y0,
    width: box.x1 - box.x0,
    height: box.y1 - box.y0,
    before: cropMask(before, box),
    after: cropMask(after, box),
  };
}

/** Writes one side of a diff into a mask; throws if the diff does not fit the mask. */
export function applyDiff(mask: MaskImage, diff: MaskDiff, side: 'before' | 'after'): void {
  checkDiff(mask, diff);
  const src = side === 'before' ? diff.before : diff.after;
  for (let r = 0; r < diff.height; r++) {
    mask.data.set(src.subarray(r * diff.width, (r + 1) * diff.width), (diff.y + r) * mask.width + diff.x);
  }
}

/** True when the pixels under the diff's box equal its `side`. */
export function maskMatchesDiff(mask: MaskImage, diff: MaskDiff, side: 'before' | 'after'): boolean {
  checkDiff(mask, diff);
  const src = side === 'before' ? diff.before : diff.after;
  for (let r = 0; r < diff.height; r++) {
    const row = (diff.y + r) * mask.width + diff.x;
    for (let c = 0; c < diff.width; c++) if (mask.data[row + c] !== src[r * diff.width + c]) return false;
  }
  return true;
}

export function checkDiff(mask: MaskImage, diff: MaskDiff): void {
  const n = diff.width * diff.height;
  if (
    !Number.isInteger(diff.x) ||
    !Number.isInteger(diff.y) ||
    diff.width <= 0 ||
    diff.height <= 0 ||
    diff.x < 0 ||
    diff.y < 0 ||
    diff.x + diff.width > mask.width ||
    diff.y + diff.height > mask.height ||
    diff.before.length !== n ||
    diff.after.length !== n
  ) {
    throw new Error(
      `edit of ${diff.width}x${diff.height} at (${diff.x}, ${diff.y}) does not fit a ${mask.width}x${mask.height} mask`,
    );
  }
}

/** Number of pixels a diff changes. */
export function changedPixels(diff: MaskDiff): number {
  let n = 0;
  for (let i = 0; i < diff.before.length; i++) if (diff.before[i] !== diff.after[i]) n++;
  return n;
}
