// The arithmetic around a SAM-family model (samLayout.ts): the image as the encoder takes it, a person's clicks
// and box as the decoder takes them, and the decoder's mask logits back at the image's size. Pure.
import type { MaskImage, RgbImage } from '../../masks/maskImage';
import type { SamLayout } from './samLayout';
import type { ClickPromptParams } from '../../protocol/modelProtocol';

/** A click prompt (the protocol's), its region as a mask of the image's size. */
export interface ClickPrompt extends Omit<ClickPromptParams, 'region'> {
  /** A region to refine (the decoder's mask prompt): 1 inside, 0 outside, at the image's size. */
  region?: MaskImage;
  /** The decoder's own low-resolution logits of an earlier answer (mask_input as SAM's interactive loop feeds it). */
  previous?: Float32Array;
}

/** SAM's pixel normalisation (ImageNet mean and spread, on 0-255). */
const MEAN = [123.675, 116.28, 103.53];
const STD = [58.395, 57.12, 57.375];

/** Where the image lands in the encoder's S x S input: the scale of each axis (input pixels per image pixel). */
export function inputScale(layout: Pick<SamLayout, 'preprocess' | 'inputSize'>, width: number, height: number) {
  if (layout.preprocess === 'stretched') return { sx: layout.inputSize / width, sy: layout.inputSize / height };
  const s = layout.inputSize / Math.max(width, height);
  // The resized image is rounded to whole pixels (as SAM's ResizeLongestSide does); the scales are its own.
  const w = Math.floor(width * s + 0.5);
  const h = Math.floor(height * s + 0.5);
  return { sx: w / width, sy: h / height };
}

/**
 * Resizes an RGB image with a triangle (bilinear) filter whose support widens when shrinking, as Pillow's
 * BILINEAR resize does (SAM's reference preprocessing), into float planes (one per channel, 0-255).
 */
export function resizeRgbPlanes(image: RgbImage, width: number, height: number): Float32Array[] {
  const horizontal = resampleWeights(image.width, width);
  const vertical = resampleWeights(image.height, height);
  const planes = [0, 1, 2].map(() => new Float32Array(width * height));
  const row = new Float32Array(width * 3 * image.height);
  // Columns first, into rows of the new width.
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < width; x++) {
      const { start, weights } = horizontal[x];
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < weights.length; k++) {
        const s = (y * image.width + start + k) * 3;
        r += weights[k] * image.data[s];
        g += weights[k] * image.data[s + 1];
        b += weights[k] * image.data[s + 2];
      }
      const o = (y * width + x) * 3;
      row[o] = r;
      row[o + 1] = g;
      row[o + 2] = b;
    }
  }
  for (let y = 0; y < height; y++) {
    const { start, weights } = vertical[y];
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (let k = 0; k < weights.length; k++) v += weights[k] * row[((start + k) * width + x) * 3 + c];
        planes[c][y * width + x] = Math.min(255, Math.max(0, v));
      }
    }
  }
  return planes;
}

/** Per output index: the first input index and the normalised triangle weights of the inputs it reads. */
function resampleWeights(from: number, to: number): { start: number; weights: Float32Array }[] {
  const scale = from / to;
  const support = Math.max(1, scale);
  return Array.from({ length: to }, (_, i) => {
    const centre = (i + 0.5) * scale;
    const start = Math.max(0, Math.floor(centre - support + 0.5));
    const end = Math.min(from, Math.floor(centre + support + 0.5));
    const weights = new Float32Array(Math.max(1, end - start));
    let total = 0;
    for (let j = start; j < end; j++) {
      const w = Math.max(0, 1 - Math.abs((j + 0.5 - centre) / support));
      weights[j - start] = w;
      total += w;
    }
    if (total > 0) for (let k = 0; k < weights.length; k++) weights[k] /= total;
    else weights[0] = 1;
    return { start, weights };
  });
}

/** The encoder's input tensor for an image: its data and dims. */
export function encoderInput(
  image: RgbImage,
  layout: Pick<SamLayout, 'preprocess' | 'inputSize'>,
): { data: Float32Array; dims: number[] } {
  const S = layout.inputSize;
  const { sx, sy } = inputScale(layout, image.width, image.height);
  const w = Math.round(image.width * sx);
  const h = Math.round(image.height * sy);
  const planes = resizeRgbPlanes(image, w, h);
  if (layout.preprocess === 'raw') {
    const data = new Float32Array(w * h * 3);
    for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = planes[c][i];
    return { data, dims: [h, w, 3] };
  }
  // Normalised, channels first; the padding (right and bottom, SAM only) stays 0 after normalisation.
  const data = new Float32Array(3 * S * S);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) data[c * S * S + y * S + x] = (planes[c][y * w + x] - MEAN[c]) / STD[c];
  return { data, dims: [1, 3, S, S] };
}

/**
 * The decoder's point_coords [1, N, 2] and point_labels [1, N]: positive clicks 1, negative 0, a box's corners
 * 2 and 3, in the encoder input's coordinates; without a box, SAM's padding point (0, 0) labelled -1.
 */
export function promptArrays(
  prompt: ClickPrompt,
  layout: Pick<SamLayout, 'preprocess' | 'inputSize'>,
  width: number,
  height: number,
): { coords: Float32Array; labels: Float32Array; count: number } {
  const { sx, sy } = inputScale(layout, width, height);
  const pts: [number, number, number][] = prompt.points.map((p) => [p.x * sx, p.y * sy, p.positive ? 1 : 0]);
  if (prompt.box) {
    const { x0, y0, x1, y1 } = prompt.box;
    pts.push([Math.min(x0, x1) * sx, Math.min(y0, y1) * sy, 2], [Math.max(x0, x1) * sx, Math.max(y0, y1) * sy, 3]);
  } else {
    pts.push([0, 0, -1]);
  }
  const coords = new Float32Array(pts.length * 2);
  const labels = new Float32Array(pts.length);
  pts.forEach(([x, y, l], i) => {
    coords[i * 2] = x;
    coords[i * 2 + 1] = y;
    labels[i] = l;
  });
  return { coords, labels, count: pts.length };
}

/** Logit given to the mask prompt's cells, scaled by how much of each cell the region covers. */
const MASK_PROMPT_LOGIT = 8;

/**
 * A region as the decoder's mask_input [1, 1, M, M]: each low-resolution cell's share of region pixels, as a
 * logit from -8 (none) to +8 (all). The grid covers the encoder's S x S input, as the decoder's own low-resolution masks do.
 */
export function maskPromptArray(
  region: MaskImage,
  layout: Pick<SamLayout, 'preprocess' | 'inputSize' | 'maskInputSize'>,
): Float32Array {
  const M = layout.maskInputSize;
  const { sx, sy } = inputScale(layout, region.width, region.height);
  const cell = layout.inputSize / M;
  const inside = new Float32Array(M * M);
  const total = new Float32Array(M * M);
  for (let y = 0; y < region.height; y++) {
    const cy = Math.min(M - 1, Math.floor(((y + 0.5) * sy) / cell));
    for (let x = 0; x < region.width; x++) {
      const c = cy * M + Math.min(M - 1, Math.floor(((x + 0.5) * sx) / cell));
      total[c]++;
      if (region.data[y * region.width + x] > 0) inside[c]++;
    }
  }
  const out = new Float32Array(M * M).fill(-MASK_PROMPT_LOGIT);
  for (let i = 0; i < out.length; i++) if (total[i] > 0) out[i] = MASK_PROMPT_LOGIT * (2 * (inside[i] / total[i]) - 1);
  return out;
}

export interface ClickCandidate {
  /** 1 inside, 0 outside, at the image's size. */
  mask: Uint8Array;
  /** The decoder's predicted IoU of this candidate. */
  score: number;
  /** Pixels inside. */
  area: number;
  /** Its place in the decoder's output. */
  index: number;
  /** The logit above which a pixel is inside: 0, SAM's own, unless the clicks moved the edge (edgeThreshold). */
  threshold: number;
}

/**
 * The decoder's logit thresholds tried for an answer that contradicts a click, SAM's own 0 first, then by
 * distance from it (lower first). Chosen on street-1hz frames 1-6 (docs/benchmarks.md, "Click segmentation").
 */
export const EDGE_THRESHOLDS: readonly number[] = [0, -0.5, 0.5, -1, 1, -2, 2, -3, 3, -4, 4, -6, 6];

/** Where each image pixel's centre falls on one axis of an n-cell grid, f cells per pixel: two cells, a weight. */
function gridAxis(pixels: number, f: number, n: number): { lo: Int32Array; hi: Int32Array; t: Float64Array } {
  const lo = new Int32Array(pixels);
  const hi = new Int32Array(pixels);
  const t = new Float64Array(pixels);
  for (let i = 0; i < pixels; i++) {
    const v = Math.min(n - 1, Math.max(0, (i + 0.5) * f - 0.5));
    lo[i] = Math.floor(v);
    hi[i] = Math.min(n - 1, lo[i] + 1);
    t[i] = v - lo[i];
  }
  return { lo, hi, t };
}

/** The low-resolution grid's cells and weights for each image column and row. */
function logitAxes(
  h: number,
  w: number,
  layout: Pick<SamLayout, 'preprocess' | 'inputSize'>,
  width: number,
  height: number,
) {
  const { sx, sy } = inputScale(layout, width, height);
  return {
    cols: gridAxis(width, (sx * w) / layout.inputSize, w),
    rows: gridAxis(height, (sy * h) / layout.inputSize, h),
  };
}

/**
 * A logit plane of width w read at an image pixel's centre: as it is (no axes: it has the image's size), else
 * sampled bilinearly along the low-resolution grid's axes.
 */
function logitReader(
  w: number,
  axes: ReturnType<typeof logitAxes> | null,
): (plane: Float32Array, x: number, y: number) => number {
  if (!axes) return (plane, x, y) => plane[y * w + x];
  const { cols, rows } = axes;
  return (plane, x, y) => {
    const tu = cols.t[x];
    const tv = rows.t[y];
    const r0 = rows.lo[y] * w;
    const r1 = rows.hi[y] * w;
    const top = plane[r0 + cols.lo[x]] * (1 - tu) + plane[r0 + cols.hi[x]] * tu;
    const bottom = plane[r1 + cols.lo[x]] * (1 - tu) + plane[r1 + cols.hi[x]] * tu;
    return top * (1 - tv) + bottom * tv;
  };
}

/**
 * The threshold of `thresholds` at which the most clicks are kept (a positive click's pixel inside, a negative
 * one's outside), the first of them on a tie: the decoder's edge moved out or in as the clicks say.
 */
export function edgeThreshold(
  logitAt: (x: number, y: number) => number,
  points: readonly { x: number; y: number; positive: boolean }[],
  width: number,
  height: number,
  thresholds: readonly number[] = EDGE_THRESHOLDS,
): number {
  const at = points.map((p) => ({
    logit: logitAt(
      Math.min(width - 1, Math.max(0, Math.floor(p.x))),
      Math.min(height - 1, Math.max(0, Math.floor(p.y))),
    ),
    positive: p.positive,
  }));
  let best = thresholds[0] ?? 0;
  let bestKept = -1;
  for (const t of thresholds) {
    let kept = 0;
    for (const p of at) if (p.logit > t === p.positive) kept++;
    if (kept > bestKept) {
      best = t;
      bestKept = kept;
      if (kept === at.length) break;
    }
  }
  return best;
}

/**
 * The decoder's candidates at the image's size, best predicted IoU first. `logits` is [1, K, h, w]: at the
 * image's own size it is read as it is; otherwise it covers the encoder's S x S input (low-resolution masks)
 * and is sampled bilinearly at each image pixel's centre. A pixel is inside where its logit is above 0, or,
 * with `points` (the clicks, in the same frame), above the candidate's edgeThreshold for them.
 */
export function candidateMasks(
  logits: Float32Array,
  dims: readonly number[],
  scores: Float32Array,
  layout: Pick<SamLayout, 'preprocess' | 'inputSize'>,
  width: number,
  height: number,
  points?: readonly { x: number; y: number; positive: boolean }[],
): ClickCandidate[] {
  const [, K, h, w] = dims;
  const axes = h === height && w === width ? null : logitAxes(h, w, layout, width, height);
  const read = logitReader(w, axes);
  const out: ClickCandidate[] = [];
  for (let k = 0; k < K; k++) {
    const plane = logits.subarray(k * h * w, (k + 1) * h * w);
    const threshold = points ? edgeThreshold((x, y) => read(plane, x, y), points, width, height) : 0;
    const mask = new Uint8Array(width * height);
    let area = 0;
    if (!axes) {
      for (let i = 0; i < mask.length; i++) if (plane[i] > threshold) area += mask[i] = 1;
    } else {
      // logitReader's sampling, its axes read inline a row at a time (a call per pixel took twice as long).
      const { cols, rows } = axes;
      for (let y = 0; y < height; y++) {
        const tv = rows.t[y];
        const r0 = rows.lo[y] * w;
        const r1 = rows.hi[y] * w;
        for (let x = 0; x < width; x++) {
          const tu = cols.t[x];
          const top = plane[r0 + cols.lo[x]] * (1 - tu) + plane[r0 + cols.hi[x]] * tu;
          const bottom = plane[r1 + cols.lo[x]] * (1 - tu) + plane[r1 + cols.hi[x]] * tu;
          if (top * (1 - tv) + bottom * tv > threshold) area += mask[y * width + x] = 1;
        }
      }
    }
    out.push({ mask, score: scores[k] ?? 0, area, index: k, threshold });
  }
  return out.sort((a, b) => b.score - a.score);
}
