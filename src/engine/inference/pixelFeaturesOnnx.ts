// The pixel head's Gaussian smoothings (pixelFeatures.ts: 80% of its features' time in plain JS) through
// onnxruntime-node: the band's planes mirror-padded in JS exactly as the JS smoothing reads past their edges,
// then one depthwise convolution along the rows and one along the columns, each plane with its own kernel
// (zero-padded to the widest). The derivatives and the Hessian's eigenvalues stay in JS. Checked once per
// process against the JS features on a fixed image; a mismatch, or no onnxruntime, keeps the JS path.
import type * as Ort from 'onnxruntime-node';
import type { RgbImage } from '../../masks/maskImage';
import { SeededRandom } from '../../masks/seededRandom';
import { Proto, floatTensor, node, onnxModel, tensorValueInfo } from './onnxProto';
import { inferenceChoice, loadOrt, sessionOptions } from './onnxInference';
import {
  MAX_KERNEL_RADIUS,
  SMOOTHINGS,
  bandFeatures,
  featureBand,
  mirror,
  paddedKernel,
  pixelFeatures,
  type FeatureBand,
} from './pixelFeatures';

/** Largest difference from the JS features tolerated in the check. */
export const FEATURES_ONNX_TOLERANCE = 1e-4;

/** The graph: "x" [1, planes, h + 2R, w + 2R] mirror-padded, "y" [1, planes, h, w] smoothed (R = MAX_KERNEL_RADIUS). */
export function smoothingGraph(): Uint8Array {
  const n = SMOOTHINGS.length;
  const taps = 2 * MAX_KERNEL_RADIUS + 1;
  const kernels = new Float32Array(n * taps);
  SMOOTHINGS.forEach(({ sigma }, i) => kernels.set(paddedKernel(sigma, MAX_KERNEL_RADIUS), i * taps));
  const g = new Proto().string(2, 'maskloop-pixel-features');
  g.message(5, floatTensor('kx', [n, 1, 1, taps], kernels));
  g.message(5, floatTensor('ky', [n, 1, taps, 1], kernels));
  g.message(
    1,
    node('Conv', ['x', 'kx'], ['rows'], 'smooth/rows', [
      { name: 'group', i: n },
      { name: 'kernel_shape', ints: [1, taps] },
    ]),
  );
  g.message(
    1,
    node('Conv', ['rows', 'ky'], ['y'], 'smooth/columns', [
      { name: 'group', i: n },
      { name: 'kernel_shape', ints: [taps, 1] },
    ]),
  );
  g.message(11, tensorValueInfo('x', [1, n, 'padded_height', 'padded_width']));
  g.message(12, tensorValueInfo('y', [1, n, 'height', 'width']));
  return onnxModel(g);
}

/** The band's planes, one per smoothing, mirror-padded by R on every side as the JS smoothing mirrors them. */
export function paddedPlanes(band: FeatureBand): Float32Array {
  const R = MAX_KERNEL_RADIUS;
  const { width: w, height: h } = band;
  const pw = w + 2 * R;
  const ph = h + 2 * R;
  const columns = Int32Array.from({ length: pw }, (_, x) => mirror(x - R, w));
  const out = new Float32Array(SMOOTHINGS.length * ph * pw);
  SMOOTHINGS.forEach(({ plane }, i) => {
    const src = plane === 'grey' ? band.grey : band.colour[plane];
    const base = i * ph * pw;
    for (let y = 0; y < ph; y++) {
      const row = mirror(y - R, h) * w;
      const o = base + y * pw;
      for (let x = 0; x < pw; x++) out[o + x] = src[row + columns[x]];
    }
  });
  return out;
}

type Smoother = (band: FeatureBand) => Promise<Float32Array[]>;

let built: Promise<Smoother | null> | null = null;
let problem = '';

/** Why the features run in JS ('' when they run through onnxruntime, or were not tried). */
export function featuresOnnxProblem(): string {
  return problem;
}

async function build(o: typeof Ort): Promise<Smoother | null> {
  const session = await o.InferenceSession.create(smoothingGraph(), sessionOptions(false));
  const n = SMOOTHINGS.length;
  const R = MAX_KERNEL_RADIUS;
  const smoother: Smoother = async (band) => {
    const { width: w, height: h } = band;
    const x = new o.Tensor('float32', paddedPlanes(band), [1, n, h + 2 * R, w + 2 * R]);
    const y = (await session.run({ x })).y.data as Float32Array;
    return SMOOTHINGS.map((_, i) => y.subarray(i * w * h, (i + 1) * w * h));
  };
  // The check: a small noisy image (smaller than the halo, so the padding mirrors more than once) through both.
  const rng = new SeededRandom(23);
  const probe: RgbImage = {
    width: 37,
    height: 19,
    data: Uint8Array.from({ length: 37 * 19 * 3 }, () => rng.int(0, 256)),
  };
  const expected = pixelFeatures(probe);
  const band = featureBand(probe, 0, probe.height);
  const got = bandFeatures(band, await smoother(band), 0, probe.height);
  let diff = 0;
  expected.forEach((plane, f) => plane.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - got[f][i])))));
  if (!(diff <= FEATURES_ONNX_TOLERANCE)) {
    problem = `the pixel features through onnxruntime differ from JS by ${diff} (tolerance ${FEATURES_ONNX_TOLERANCE}): they run in JS`;
    await session.release();
    return null;
  }
  problem = '';
  return smoother;
}

/**
 * The features of rows y0..y1-1 of the image, as pixelFeatures computes them, the smoothings through
 * onnxruntime when it is installed and chosen and its check passed; else in JS.
 */
export async function pixelFeaturesFast(image: RgbImage, y0 = 0, y1 = image.height): Promise<Float32Array[]> {
  const o = inferenceChoice() === 'tfjs' ? null : loadOrt();
  if (!o) return pixelFeatures(image, y0, y1);
  built ??= build(o).catch((err: unknown) => {
    problem = `the pixel features could not run through onnxruntime (${(err as Error).message}): they run in JS`;
    return null;
  });
  const smoother = await built;
  if (!smoother) return pixelFeatures(image, y0, y1);
  const band = featureBand(image, y0, y1);
  return bandFeatures(band, await smoother(band), y0, y1);
}

/** The features of rows y0..y1-1 of an image: pixelFeatures, or the same through onnxruntime (pixelFeaturesFast). */
export type FeaturesOf = (image: RgbImage, y0: number, y1: number) => Float32Array[] | Promise<Float32Array[]>;

/**
 * pixelFeaturesFast for one image, keeping each band of rows it computed: the pixel head's fit and the training
 * check read the same image's features in the same bands (a 480x360 street frame's: 19 MB).
 */
export function keptFeatures(): FeaturesOf {
  const kept = new Map<string, Float32Array[]>();
  let of: RgbImage | null = null;
  return async (image, y0, y1) => {
    if (of !== null && of !== image) throw new Error('keptFeatures: one image only');
    of = image;
    const key = `${y0}:${y1}`;
    const hit = kept.get(key);
    if (hit) return hit;
    const planes = await pixelFeaturesFast(image, y0, y1);
    kept.set(key, planes);
    return planes;
  };
}
