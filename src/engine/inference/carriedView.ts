// What the sequence head (sequenceHead.ts) reads of a frame besides its filter features: the neighbour's mask
// carried onto it as probabilities, combined with the mask of the frame beyond the neighbour carried onto it
// too (a second observation of the same edges), and planes that say where carrying can be trusted: how well
// the neighbour's colours match the frame's where the flow finds each pixel, how far going there and back
// misses, how far the pixel moved, and the carried probabilities averaged over a few pixels around it.
import type { RgbImage } from '../../masks/maskImage';
import { boxMean } from './guidedFilter';
import { denseFlow } from './opticalFlow';
import { DEFAULT_FUSION, carryMask, type FusionSettings } from './propagation';
import { pixelFeaturesFast, type FeaturesOf } from './pixelFeaturesOnnx';
import type { ReviewedFrame } from './sequenceSuggestion';
import { carriedProbabilities } from './sequenceHead';

/** A frame as the sequence head reads it: the carried probabilities and the planes beside its filter features. */
export interface CarriedView {
  /** Carried class probabilities, interleaved per pixel (width x height x classes). */
  probabilities: Float32Array;
  /** Planes of width x height values each, read after the frame's filter features (CARRIED_PLANES + classes). */
  planes: Float32Array[];
}

/** Radius of the box over which the carried probabilities are averaged for their planes. */
export const CARRIED_BOX_RADIUS = 2;

/** Planes beside the averaged carried probabilities: the colour residual, it averaged, the round-trip miss, the motion. */
export const CARRIED_PLANES = 4;

/**
 * The planes of a frame carried from `neighbour` (`backward`: the flow from the frame to the neighbour,
 * `forward`: from the neighbour to the frame; `carried`: the carried probabilities, classes per pixel):
 * - log(1 + mean absolute colour difference) between the frame and the neighbour sampled (bilinearly) where the
 *   backward flow finds each pixel, and the same averaged over a box of CARRIED_BOX_RADIUS;
 * - log(1 + the round trip's miss): the backward flow plus the forward flow where it lands;
 * - log(1 + the backward flow's length);
 * - each class's carried probability averaged over a box of CARRIED_BOX_RADIUS.
 */
export function carriedPlanes(
  frame: RgbImage,
  neighbour: RgbImage,
  backward: Float32Array,
  forward: Float32Array,
  carried: Float32Array,
  classes: number,
): Float32Array[] {
  const { width: W, height: H } = frame;
  const n = W * H;
  const residual = new Float32Array(n);
  const miss = new Float32Array(n);
  const motion = new Float32Array(n);
  const a = frame.data;
  const b = neighbour.data;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      const u = backward[2 * i];
      const v = backward[2 * i + 1];
      motion[i] = Math.log1p(Math.hypot(u, v));
      const sx = Math.min(W - 1, Math.max(0, x + u));
      const sy = Math.min(H - 1, Math.max(0, y + v));
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const x1 = Math.min(W - 1, x0 + 1);
      const y1 = Math.min(H - 1, y0 + 1);
      const fx = sx - x0;
      const fy = sy - y0;
      let r = 0;
      for (let c = 0; c < 3; c++) {
        const top = (1 - fx) * b[(y0 * W + x0) * 3 + c] + fx * b[(y0 * W + x1) * 3 + c];
        const bottom = (1 - fx) * b[(y1 * W + x0) * 3 + c] + fx * b[(y1 * W + x1) * 3 + c];
        r += Math.abs(a[i * 3 + c] - ((1 - fy) * top + fy * bottom));
      }
      residual[i] = Math.log1p(r / 3);
      const j = Math.round(sy) * W + Math.round(sx);
      miss[i] = Math.log1p(Math.hypot(u + forward[2 * j], v + forward[2 * j + 1]));
    }
  const tmp = new Float32Array(n);
  const averaged = (src: Float32Array) => boxMean(src, W, H, CARRIED_BOX_RADIUS, new Float32Array(n), tmp);
  const planes = [residual, averaged(residual), miss, motion];
  const plane = new Float32Array(n);
  for (let c = 0; c < classes; c++) {
    for (let i = 0; i < n; i++) plane[i] = carried[i * classes + c];
    planes.push(averaged(plane));
  }
  return planes;
}

/** Per pixel, the geometric mean of two carried probabilities (each floored at 1e-6), normalised. */
export function geometricMean(a: Float32Array, b: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i += classes) {
    let total = 0;
    for (let c = 0; c < classes; c++)
      total += out[i + c] = Math.sqrt(Math.max(1e-6, a[i + c]) * Math.max(1e-6, b[i + c]));
    for (let c = 0; c < classes; c++) out[i + c] /= total;
  }
  return out;
}

/** Carries `from`'s mask onto `frame` as carriedProbabilities gives it; also the two flows. */
async function carriedFrom(
  frame: RgbImage,
  from: ReviewedFrame,
  classes: number,
  settings: FusionSettings,
): Promise<{ probabilities: Float32Array; backward: Float32Array; forward: Float32Array }> {
  const backward = await denseFlow(frame, from.image);
  const forward = await denseFlow(from.image, frame);
  const carried = carryMask(from.mask, backward, forward, classes);
  return { probabilities: carriedProbabilities(carried, frame, classes, settings), backward, forward };
}

/**
 * The view of `frame` with `near`'s mask carried onto it and, when given and of the frame's size, `beyond`'s
 * (the frame before `near`) as a second observation: the two carried probabilities' geometric mean. On the
 * first half of street-15hz the second observation and the planes together took the suggestions (the head
 * weighed at 0.5 with a model fine-tuned on the first 4 frames) from 2.82% of pixels wrong to 2.62%, and to
 * 2.48% at the weight now used (docs/benchmarks.md, "What the head reads"). The flows come kept
 * (opticalFlow.ts) where an earlier suggestion computed them.
 */
export async function carriedView(
  frame: RgbImage,
  near: ReviewedFrame,
  classes: number,
  beyond?: ReviewedFrame,
  settings: FusionSettings = DEFAULT_FUSION,
): Promise<CarriedView> {
  const first = await carriedFrom(frame, near, classes, settings);
  const planes = carriedPlanes(frame, near.image, first.backward, first.forward, first.probabilities, classes);
  if (!beyond || beyond.image.width !== frame.width || beyond.image.height !== frame.height)
    return { probabilities: first.probabilities, planes };
  const second = await carriedFrom(frame, beyond, classes, settings);
  return { probabilities: geometricMean(first.probabilities, second.probabilities, classes), planes };
}

/** The frame's filter features (pixelFeaturesFast, or `base`) band by band, with the view's planes after them. */
export function viewFeatures(view: CarriedView, width: number, base: FeaturesOf = pixelFeaturesFast): FeaturesOf {
  return async (image, y0, y1) => [
    ...(await base(image, y0, y1)),
    ...view.planes.map((plane) => plane.subarray(y0 * width, y1 * width)),
  ];
}
