// The pixel head: after the network (and the guided filter), a small perceptron per pixel reads filter features
// of the image at full resolution (pixelFeatures.ts) beside the network's log-probabilities, and gives the
// class probabilities. The network sees objects at stride 8-16; the head draws what that blurs: thin membranes,
// edges a few pixels off. Fitted at the end of each fine-tune on the training images (pixelHeadFit.ts), kept
// only where validation says it helps, stored in the model's meta (ModelMeta.pixelHead).
import type { RgbImage } from '../../masks/maskImage';
import type { PixelHeadWeights } from '../../protocol/modelTypes';
import { PIXEL_FEATURE_COUNT, pixelFeatures } from './pixelFeatures';

/** The feature set this build computes (PixelHeadWeights.features). */
export const PIXEL_FEATURE_SET = `filters-v1-${PIXEL_FEATURE_COUNT}`;

/** Floor of a probability before its log, so a class the network rules out stays a finite input. */
const PROB_FLOOR = 1e-4;

/** Rows of the image whose features are held at once while the head runs. */
export const BAND_ROWS = 256;

/** Why a stored head cannot run on this model's outputs, or null when it can. */
export function pixelHeadProblem(head: PixelHeadWeights, classes: number): string | null {
  if (head.features !== PIXEL_FEATURE_SET)
    return `its pixel head was fitted on features "${head.features}", this version computes "${PIXEL_FEATURE_SET}"`;
  const { inputs, hidden } = head;
  const sizes: [string, number, number][] = [
    ['inputs', inputs, PIXEL_FEATURE_COUNT + classes],
    ['classes', head.classes, classes],
    ['mean', head.mean.length, inputs],
    ['scale', head.scale.length, inputs],
    ['w1', head.w1.length, inputs * hidden],
    ['b1', head.b1.length, hidden],
    ['w2', head.w2.length, hidden * classes],
    ['b2', head.b2.length, classes],
  ];
  for (const [name, got, want] of sizes)
    if (got !== want) return `its pixel head's ${name} has ${got} values where ${want} are needed`;
  const all = [head.mean, head.scale, head.w1, head.b1, head.w2, head.b2];
  if (!all.every((a) => a.every((v) => Number.isFinite(v)))) return 'its pixel head holds a value that is not a number';
  return null;
}

/**
 * One pixel's head input, standardised: its features (planes at index p) and the log of its k probabilities.
 * Written into `out`.
 */
export function headInput(
  planes: Float32Array[],
  p: number,
  probs: Float32Array,
  q: number,
  k: number,
  mean: ArrayLike<number>,
  scale: ArrayLike<number>,
  out: Float32Array,
): void {
  const f = planes.length;
  for (let j = 0; j < f; j++) out[j] = (planes[j][p] - mean[j]) * scale[j];
  for (let c = 0; c < k; c++) out[f + c] = (Math.log(Math.max(PROB_FLOOR, probs[q + c])) - mean[f + c]) * scale[f + c];
}

/** The head's forward pass on one standardised input: hidden activations (ReLU) into `hidden`, softmax into `out`. */
export function headForward(
  w: { w1: ArrayLike<number>; b1: ArrayLike<number>; w2: ArrayLike<number>; b2: ArrayLike<number> },
  inputs: number,
  hiddenCount: number,
  classes: number,
  x: Float32Array,
  hidden: Float32Array,
  out: Float32Array,
): void {
  for (let h = 0; h < hiddenCount; h++) hidden[h] = w.b1[h];
  for (let j = 0; j < inputs; j++) {
    const v = x[j];
    if (v === 0) continue;
    const row = j * hiddenCount;
    for (let h = 0; h < hiddenCount; h++) hidden[h] += v * w.w1[row + h];
  }
  for (let h = 0; h < hiddenCount; h++) if (hidden[h] < 0) hidden[h] = 0;
  let max = -Infinity;
  for (let c = 0; c < classes; c++) {
    let z = w.b2[c];
    for (let h = 0; h < hiddenCount; h++) z += hidden[h] * w.w2[h * classes + c];
    out[c] = z;
    if (z > max) max = z;
  }
  let total = 0;
  for (let c = 0; c < classes; c++) total += out[c] = Math.exp(out[c] - max);
  for (let c = 0; c < classes; c++) out[c] /= total;
}

/**
 * The head on a whole image: `probs` (height x width x k, the network's) in, the head's probabilities out (a
 * new array). Features are computed in bands of rows, so memory stays a band's, whatever the image's size.
 */
export function applyPixelHead(head: PixelHeadWeights, image: RgbImage, probs: Float32Array): Float32Array {
  const { width: W, height: H } = image;
  const k = head.classes;
  const out = new Float32Array(W * H * k);
  const w = {
    w1: Float32Array.from(head.w1),
    b1: Float32Array.from(head.b1),
    w2: Float32Array.from(head.w2),
    b2: Float32Array.from(head.b2),
  };
  const x = new Float32Array(head.inputs);
  const hidden = new Float32Array(head.hidden);
  const p = new Float32Array(k);
  for (let y0 = 0; y0 < H; y0 += BAND_ROWS) {
    const y1 = Math.min(H, y0 + BAND_ROWS);
    const planes = pixelFeatures(image, y0, y1);
    for (let i = 0; i < (y1 - y0) * W; i++) {
      const q = (y0 * W + i) * k;
      headInput(planes, i, probs, q, k, head.mean, head.scale, x);
      headForward(w, head.inputs, head.hidden, k, x, hidden, p);
      out.set(p, q);
    }
  }
  return out;
}

/**
 * The raw head inputs (features, then log-probabilities; not standardised) of `pixels` pixels of a band whose
 * features are `planes`, the first at `q0 / k` in `probs`: pixels x inputs, as the ONNX head reads them.
 */
export function bandInputs(
  planes: Float32Array[],
  probs: Float32Array,
  q0: number,
  pixels: number,
  k: number,
): Float32Array {
  const f = planes.length;
  const inputs = f + k;
  const out = new Float32Array(pixels * inputs);
  for (let i = 0; i < pixels; i++) {
    const o = i * inputs;
    for (let j = 0; j < f; j++) out[o + j] = planes[j][i];
    const q = q0 + i * k;
    for (let c = 0; c < k; c++) out[o + f + c] = Math.log(Math.max(PROB_FLOOR, probs[q + c]));
  }
  return out;
}

/** The head's JS forward on raw inputs (pixels x inputs, as bandInputs writes them): probabilities, pixels x classes. */
export function headForwardRaw(head: PixelHeadWeights): (x: Float32Array, pixels: number) => Float32Array {
  const w = {
    w1: Float32Array.from(head.w1),
    b1: Float32Array.from(head.b1),
    w2: Float32Array.from(head.w2),
    b2: Float32Array.from(head.b2),
  };
  return (x, pixels) => {
    const k = head.classes;
    const out = new Float32Array(pixels * k);
    const standard = new Float32Array(head.inputs);
    const hidden = new Float32Array(head.hidden);
    const p = new Float32Array(k);
    for (let i = 0; i < pixels; i++) {
      for (let j = 0; j < head.inputs; j++) standard[j] = (x[i * head.inputs + j] - head.mean[j]) * head.scale[j];
      headForward(w, head.inputs, head.hidden, k, standard, hidden, p);
      out.set(p, i * k);
    }
    return out;
  };
}
