// The fast guided filter of guidedFilter.ts as one onnxruntime graph: the block means and the window means as
// average pools (clipped windows divided by their own counts, as the JS box mean), the colour covariance's
// inverse and the per-class coefficients elementwise, the coefficients upsampled by Resize (half-pixel
// centres, clamped at the border, as the JS upsampling) and applied to the full-resolution colours, then the
// clip and the renormalisation. In JS the full-resolution pass wrote each class's plane into interleaved
// probabilities: 70-130 ms of a street frame's pre-label with 11 classes here. Checked once per class count
// and settings against the JS filter on a fixed image; a mismatch, or no onnxruntime, keeps the JS path.
import type * as Ort from 'onnxruntime-node';
import { SeededRandom } from '../../masks/seededRandom';
import { Proto, floatTensor, int64Tensor, node, onnxModel, tensorValueInfo, type Attr } from './onnxProto';
import { inferenceChoice, loadOrt, sessionOptions } from './onnxInference';
import { resizeAttrs } from './onnxExport';
import { guidedFilterProbabilities, type GuidedFilterSettings } from './guidedFilter';

/** Largest difference in any probability from the JS filter tolerated in the check. */
export const GUIDED_ONNX_TOLERANCE = 1e-4;

/** Images up to this many pixels are refined through onnxruntime; its full-resolution planes are held at once. */
export const GUIDED_ONNX_MAX_PIXELS = 1024 * 1024;

/**
 * The graph for `classes` classes: inputs "guide" [1, H, W, 3] (colours already mapped to [0, 1]) and "probs"
 * [1, H, W, classes]; output "refined" [1, H, W, classes].
 */
export function guidedFilterGraph(classes: number, settings: GuidedFilterSettings): Uint8Array {
  const s = Math.max(1, Math.floor(settings.subsample ?? 1));
  const r = Math.max(0, Math.round(settings.radius / s));
  const g = new Proto().string(2, 'maskloop-guided-filter');
  const nodes: Proto[] = [];
  let uid = 0;
  const op = (type: string, inputs: string[], attrs: Attr[] = []): string => {
    const out = `${type}_${uid++}`;
    nodes.push(node(type, inputs, [out], out, attrs));
    return out;
  };
  const inits: Proto[] = [
    floatTensor('eps', [], Float32Array.of(settings.eps)),
    floatTensor('zero', [], Float32Array.of(0)),
    floatTensor('scales', [4], Float32Array.of(1, 1, s, s)),
  ];
  const ints = new Set<string>();
  const int = (values: number[]): string => {
    const name = `i/${values.join(',')}`;
    if (!ints.has(name)) {
      ints.add(name);
      inits.push(int64Tensor(name, values));
    }
    return name;
  };
  // Channels [from, from + count) of an NCHW tensor.
  const channels = (x: string, from: number, count: number): string =>
    op('Slice', [x, int([from]), int([from + count]), int([1])]);
  const nchw = (x: string): string => op('Transpose', [x], [{ name: 'perm', ints: [0, 3, 1, 2] }]);
  // Block means (the clipped blocks at the far edges divided by their own counts) and window means.
  const blocks = (x: string): string =>
    s === 1
      ? x
      : op(
          'AveragePool',
          [x],
          [
            { name: 'kernel_shape', ints: [s, s] },
            { name: 'strides', ints: [s, s] },
            { name: 'ceil_mode', i: 1 },
            { name: 'count_include_pad', i: 0 },
          ],
        );
  const mean = (x: string): string =>
    r === 0
      ? x
      : op(
          'AveragePool',
          [x],
          [
            { name: 'kernel_shape', ints: [2 * r + 1, 2 * r + 1] },
            { name: 'pads', ints: [r, r, r, r] },
            { name: 'count_include_pad', i: 0 },
          ],
        );
  const mul = (a: string, b: string): string => op('Mul', [a, b]);
  const add = (a: string, b: string): string => op('Add', [a, b]);
  const sub = (a: string, b: string): string => op('Sub', [a, b]);
  const guide = nchw('guide');
  const probs = nchw('probs');
  const lowI = blocks(guide);
  const I = [0, 1, 2].map((c) => channels(lowI, c, 1));
  const meanI = I.map(mean);
  const pair = (i: number, j: number): string => sub(mean(mul(I[i], I[j])), mul(meanI[i], meanI[j]));
  const a = add(pair(0, 0), 'eps');
  const b = pair(0, 1);
  const c = pair(0, 2);
  const d = add(pair(1, 1), 'eps');
  const e = pair(1, 2);
  const f = add(pair(2, 2), 'eps');
  // The symmetric 3x3 inverse, as the JS filter writes it.
  const i00 = sub(mul(d, f), mul(e, e));
  const i01 = sub(mul(c, e), mul(b, f));
  const i02 = sub(mul(b, e), mul(c, d));
  const det = add(add(mul(a, i00), mul(b, i01)), mul(c, i02));
  const inv = (x: string): string => op('Div', [x, det]);
  const s00 = inv(i00);
  const s01 = inv(i01);
  const s02 = inv(i02);
  const s11 = inv(sub(mul(a, f), mul(c, c)));
  const s12 = inv(sub(mul(b, c), mul(a, e)));
  const s22 = inv(sub(mul(a, d), mul(b, b)));
  const lowP = blocks(probs);
  const meanP = mean(lowP);
  const cov = I.map((Ii, i) => sub(mean(mul(Ii, lowP)), mul(meanI[i], meanP)));
  const dot = (x: string, y: string, z: string): string => add(add(mul(x, cov[0]), mul(y, cov[1])), mul(z, cov[2]));
  const a0 = dot(s00, s01, s02);
  const a1 = dot(s01, s11, s12);
  const a2 = dot(s02, s12, s22);
  const bias = sub(sub(sub(meanP, mul(a0, meanI[0])), mul(a1, meanI[1])), mul(a2, meanI[2]));
  // Smoothed and upsampled to the blocks' full extent (the image's sides rounded up to whole blocks, so nothing
  // is cropped out of the coefficients: each crop was a copy), applied there to the colours (edge-padded to
  // that extent), and cropped to the image once, after the clip.
  const size = op('Slice', [op('Shape', [guide]), int([2]), int([4])]);
  const extent = mul(op('Div', [add(size, int([s - 1])), int([s])]), int([s]));
  const pads = op('Concat', [int([0, 0, 0, 0, 0, 0]), sub(extent, size)], [{ name: 'axis', i: 0 }]);
  const padded = op('Pad', [guide, pads], [{ name: 'mode', s: 'edge' }]);
  const full = (x: string): string => op('Resize', [mean(x), '', 'scales'], resizeAttrs('bilinear'));
  const G = [0, 1, 2].map((ch) => channels(padded, ch, 1));
  const fitted = add(add(add(full(bias), mul(full(a0), G[0])), mul(full(a1), G[1])), mul(full(a2), G[2]));
  // Clip the overshoots and renormalise; where nothing is left, the probabilities as they came.
  const clipped = op('Slice', [op('Relu', [fitted]), int([0, 0]), size, int([2, 3])]);
  const total = op('ReduceSum', [clipped, int([1])], [{ name: 'keepdims', i: 1 }]);
  const refined = op('Where', [op('Greater', [total, 'zero']), op('Div', [clipped, total]), probs]);
  nodes.push(node('Transpose', [refined], ['refined'], 'to_nhwc', [{ name: 'perm', ints: [0, 2, 3, 1] }]));
  nodes.forEach((n) => g.message(1, n));
  inits.forEach((t) => g.message(5, t));
  g.message(11, tensorValueInfo('guide', [1, 'height', 'width', 3]));
  g.message(11, tensorValueInfo('probs', [1, 'height', 'width', classes]));
  g.message(12, tensorValueInfo('refined', [1, 'height', 'width', classes]));
  return onnxModel(g);
}

type Refiner = (guide: Float32Array, probs: Float32Array, height: number, width: number) => Promise<Float32Array>;

const built = new Map<string, Promise<Refiner | null>>();
let problem = '';

/** Why the edge refinement runs in JS ('' when it runs through onnxruntime, or was not tried). */
export function guidedOnnxProblem(): string {
  return problem;
}

/** The guide's colours mapped by value * scale + offset, as floats (the graph's "guide"). */
function mappedGuide(guide: Float32Array | Uint8Array, scale: number, offset: number): Float32Array {
  const out = new Float32Array(guide.length);
  for (let i = 0; i < guide.length; i++) out[i] = guide[i] * scale + offset;
  return out;
}

async function build(o: typeof Ort, classes: number, settings: GuidedFilterSettings): Promise<Refiner | null> {
  const session = await o.InferenceSession.create(guidedFilterGraph(classes, settings), sessionOptions(false));
  const refiner: Refiner = async (guide, probs, height, width) => {
    const out = await session.run({
      guide: new o.Tensor('float32', guide, [1, height, width, 3]),
      probs: new o.Tensor('float32', probs, [1, height, width, classes]),
    });
    return out.refined.data as Float32Array;
  };
  // The check: a small image whose sides are not multiples of the blocks, smooth probabilities with an edge.
  const [w, h] = [53, 37];
  const rng = new SeededRandom(29);
  const colours = Uint8Array.from({ length: w * h * 3 }, (_, i) => ((i / 3) % w > w / 2 ? 160 : 40) + rng.int(0, 60));
  const raw = new Float32Array(w * h * classes);
  for (let p = 0; p < w * h; p++) {
    let sum = 0;
    for (let k = 0; k < classes; k++)
      sum += raw[p * classes + k] = rng.next() + (k === (p % w > w / 2 ? 1 : 0) ? 2 : 0);
    for (let k = 0; k < classes; k++) raw[p * classes + k] /= sum;
  }
  const expected = guidedFilterProbabilities(colours, raw, h, w, classes, settings, 1 / 255, 0);
  const got = await refiner(mappedGuide(colours, 1 / 255, 0), raw, h, w);
  let diff = got.length === expected.length ? 0 : Infinity;
  for (let i = 0; i < expected.length && diff < Infinity; i++) diff = Math.max(diff, Math.abs(expected[i] - got[i]));
  if (!(diff <= GUIDED_ONNX_TOLERANCE)) {
    problem = `the edge refinement through onnxruntime differs from JS by ${diff} (tolerance ${GUIDED_ONNX_TOLERANCE}): it runs in JS`;
    await session.release();
    return null;
  }
  return refiner;
}

/**
 * guidedFilterProbabilities (same arguments and result), through onnxruntime when it is installed and chosen,
 * the image has at most GUIDED_ONNX_MAX_PIXELS and the graph for this class count and settings passed its
 * check; else in JS.
 */
export async function refineProbabilities(
  ...args: Parameters<typeof guidedFilterProbabilities>
): Promise<Float32Array> {
  const [guide, probs, height, width, classes, settings, guideScale = 1, guideOffset = 0] = args;
  const o = inferenceChoice() === 'tfjs' || width * height > GUIDED_ONNX_MAX_PIXELS ? null : loadOrt();
  const js = (): Float32Array => guidedFilterProbabilities(...args);
  if (!o || guide.length !== width * height * 3 || probs.length !== width * height * classes) return js();
  const key = `${classes}/${settings.radius}/${settings.eps}/${settings.subsample ?? 1}`;
  let refiner = built.get(key);
  if (!refiner) {
    refiner = build(o, classes, settings).catch((err: unknown) => {
      problem = `the edge refinement could not run through onnxruntime (${(err as Error).message.split('\n')[0]}): it runs in JS`;
      return null;
    });
    built.set(key, refiner);
  }
  const run = await refiner;
  return run ? run(mappedGuide(guide, guideScale, guideOffset), probs, height, width) : js();
}
