// Zoom-in for click segmentation (RITM's "ZoomIn", Sofiiuk et al. 2022): after the first answer, later clicks
// on the object are answered on a crop around that answer and the clicks, which the encoder's resize enlarges to
// its input size, so a small object or a thin one is seen at several times its size. Pure.
import { cropMask, emptyBox, growBox, isEmptyBox, type Box } from '../../masks/maskDiff';
import type { RgbImage } from '../../masks/maskImage';

export interface ZoomSettings {
  /** The crop's sides: this many times the extent's (the answer and the clicks). */
  expand: number;
  /** The crop's smaller side at least this many pixels (or the image's side). */
  minSide: number;
  /** No zoom when the crop would cover more than this share of the image's pixels (too little to gain). */
  maxShare: number;
}

/** A click that lands this close to a zoom crop's edge (in pixels) moves the crop. */
export const ZOOM_MARGIN = 2;

/** Chosen on street-1hz frames 1-6 (docs/benchmarks.md, "Zoom-in"). */
export const ZOOM: ZoomSettings = { expand: 2.5, minSide: 160, maxShare: 0.5 };

/** The bounding box of a mask's set pixels and of the given points (pixel positions), or null when both are empty. */
export function extentOf(
  mask: Uint8Array | null,
  width: number,
  height: number,
  points: readonly { x: number; y: number }[],
): Box | null {
  const box = emptyBox();
  if (mask)
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let x = 0; x < width; x++) if (mask[row + x]) growBox(box, x, y, x + 1, y + 1);
    }
  for (const p of points) {
    const x = Math.min(width - 1, Math.max(0, Math.floor(p.x)));
    const y = Math.min(height - 1, Math.max(0, Math.floor(p.y)));
    growBox(box, x, y, x + 1, y + 1);
  }
  return isEmptyBox(box) ? null : box;
}

/**
 * The crop to answer on: the extent enlarged `expand` times about its centre (each side at least `minSide`),
 * moved inside the image, in whole pixels. Null when it would cover more than `maxShare` of the image.
 */
export function zoomBox(extent: Box, width: number, height: number, s: ZoomSettings = ZOOM): Box | null {
  const w = Math.min(width, Math.max(Math.min(s.minSide, width), Math.round((extent.x1 - extent.x0) * s.expand)));
  const h = Math.min(height, Math.max(Math.min(s.minSide, height), Math.round((extent.y1 - extent.y0) * s.expand)));
  if (w * h > s.maxShare * width * height) return null;
  const x0 = Math.max(0, Math.min(width - w, Math.round((extent.x0 + extent.x1 - w) / 2)));
  const y0 = Math.max(0, Math.min(height - h, Math.round((extent.y0 + extent.y1 - h) / 2)));
  return { x0, y0, x1: x0 + w, y1: y0 + h };
}

/** Whether a point lies inside a box, at least `margin` pixels from its edges (the image's edges excepted). */
export function insideBox(
  box: Box,
  p: { x: number; y: number },
  margin: number,
  width: number,
  height: number,
): boolean {
  const m = (edge: number, limit: number): number => (edge === limit ? 0 : margin);
  return (
    p.x >= box.x0 + m(box.x0, 0) &&
    p.x < box.x1 - m(box.x1, width) &&
    p.y >= box.y0 + m(box.y0, 0) &&
    p.y < box.y1 - m(box.y1, height)
  );
}

/** The pixels of a box of an RGB image, as an image of their own. */
export function cropRgb(image: RgbImage, box: Box): RgbImage {
  const w = box.x1 - box.x0;
  const data = new Uint8Array(w * (box.y1 - box.y0) * 3);
  for (let y = box.y0; y < box.y1; y++)
    data.set(image.data.subarray((y * image.width + box.x0) * 3, (y * image.width + box.x1) * 3), (y - box.y0) * w * 3);
  return { width: w, height: box.y1 - box.y0, data };
}

/** A full-size mask's pixels inside a box. */
export function cropFlat(mask: Uint8Array, width: number, height: number, box: Box): Uint8Array {
  return cropMask({ width, height, data: mask }, box);
}

/** A crop's mask placed at its box in an empty full-size mask. */
export function pasteFlat(crop: Uint8Array, box: Box, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const w = box.x1 - box.x0;
  for (let y = box.y0; y < box.y1; y++)
    out.set(crop.subarray((y - box.y0) * w, (y - box.y0 + 1) * w), y * width + box.x0);
  return out;
}

export function sameBox(a: Box | null, b: Box | null): boolean {
  return a === b || (!!a && !!b && a.x0 === b.x0 && a.y0 === b.y0 && a.x1 === b.x1 && a.y1 === b.y1);
}

/**
 * The crop a prompt is answered on (zoom-in), or null for the whole image: none for a first click alone (there
 * is nothing yet to zoom on); else the crop of the answer continued from while every click lies well inside it,
 * else the crop around what is refined and the clicks before the last (the one encoded ahead) when the last lies
 * well inside it, else the crop around what is refined and every click. None when it would cover most of the image.
 */
export function zoomCropFor(
  width: number,
  height: number,
  prompt: { points: readonly { x: number; y: number }[]; box?: Box },
  base: Uint8Array | null,
  earlierCrop: Box | null,
): Box | null {
  const { points, box } = prompt;
  if (!base && !box) return null;
  const holdsAll = (b: Box): boolean => points.every((pt) => insideBox(b, pt, ZOOM_MARGIN, width, height));
  if (earlierCrop && holdsAll(earlierCrop)) return earlierCrop;
  const ahead = zoomAround(width, height, base, points.slice(0, -1), box);
  if (ahead && holdsAll(ahead)) return ahead;
  return zoomAround(width, height, base, points, box);
}

/** The zoom crop around a mask, the clicks and a box, or null when it would cover most of the image. */
export function zoomAround(
  width: number,
  height: number,
  base: Uint8Array | null,
  points: readonly { x: number; y: number }[],
  box: Box | undefined,
): Box | null {
  const corners = box
    ? [
        { x: box.x0, y: box.y0 },
        { x: box.x1 - 1, y: box.y1 - 1 },
      ]
    : [];
  const extent = extentOf(base, width, height, [...points, ...corners]);
  return extent ? zoomBox(extent, width, height) : null;
}

/**
 * A decoder's low-resolution logits (M x M over the encoder input of one frame: the whole image or a crop, as a
 * box of the image) resampled bilinearly onto another frame's grid, so an answer continues on a new crop with
 * its own logits instead of a thresholded mask. Cells over the new frame's padding, or outside the old frame,
 * get `outside`.
 */
export function moveLogits(
  lowRes: Float32Array,
  M: number,
  scale: (width: number, height: number) => { sx: number; sy: number },
  inputSize: number,
  from: Box,
  to: Box,
  outside = -20,
): Float32Array {
  const out = new Float32Array(M * M);
  const a = scale(from.x1 - from.x0, from.y1 - from.y0);
  const b = scale(to.x1 - to.x0, to.y1 - to.y0);
  const cell = inputSize / M;
  const sample = (gx: number, gy: number): number => {
    const x0 = Math.max(0, Math.min(M - 1, Math.floor(gx)));
    const y0 = Math.max(0, Math.min(M - 1, Math.floor(gy)));
    const x1 = Math.min(M - 1, x0 + 1);
    const y1 = Math.min(M - 1, y0 + 1);
    const fx = Math.max(0, Math.min(1, gx - x0));
    const fy = Math.max(0, Math.min(1, gy - y0));
    const top = lowRes[y0 * M + x0] * (1 - fx) + lowRes[y0 * M + x1] * fx;
    const bottom = lowRes[y1 * M + x0] * (1 - fx) + lowRes[y1 * M + x1] * fx;
    return top * (1 - fy) + bottom * fy;
  };
  for (let i = 0; i < M; i++) {
    // The cell's centre in the new frame's pixels, then in the image's, then in the old frame's pixels.
    const yb = ((i + 0.5) * cell) / b.sy;
    const y = to.y0 + yb - from.y0;
    for (let j = 0; j < M; j++) {
      const xb = ((j + 0.5) * cell) / b.sx;
      const x = to.x0 + xb - from.x0;
      const inside =
        xb < to.x1 - to.x0 && yb < to.y1 - to.y0 && x >= 0 && y >= 0 && x < from.x1 - from.x0 && y < from.y1 - from.y0;
      out[i * M + j] = inside ? sample((x * a.sx) / cell - 0.5, (y * a.sy) / cell - 0.5) : outside;
    }
  }
  return out;
}
