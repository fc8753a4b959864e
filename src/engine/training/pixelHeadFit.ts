// The pixel head's fit (see inference/pixelHead.ts): labelled pixels sampled from the training images, their
// filter features and the network's log-probabilities as inputs, a one-hidden-layer perceptron trained with
// Adam on the cross-entropy, the batches' gradients through onnxruntime when it loads, else in plain JS. Seeded:
// the same images and seed give the same head on a machine.
import type * as Ort from 'onnxruntime-node';
import type { MaskImage, RgbImage } from '../../masks/maskImage';
import { SeededRandom } from '../../masks/seededRandom';
import type { PixelHeadWeights } from '../../protocol/modelTypes';
import { pixelFeatures } from '../inference/pixelFeatures';
import { PIXEL_FEATURE_SET, headForward, headInput } from '../inference/pixelHead';
import { inferenceChoice, loadOrt, sessionOptions } from '../inference/onnxInference';
import type { FeaturesOf } from '../inference/pixelFeaturesOnnx';
import { Proto, int64Tensor, node, onnxModel, tensorValueInfo } from '../inference/onnxProto';

export interface PixelHeadFitOptions {
  /** Labelled pixels drawn from the training images (in proportion to each image's labelled pixels). */
  samples: number;
  hidden: number;
  epochs: number;
  batch: number;
  learningRate: number;
  /** L2 penalty on the weights. */
  weightDecay: number;
  seed: number;
}

export const DEFAULT_PIXEL_HEAD_FIT: PixelHeadFitOptions = {
  samples: 60_000,
  hidden: 32,
  epochs: 15,
  batch: 256,
  learningRate: 0.005,
  weightDecay: 1e-4,
  seed: 0,
};

export interface PixelHeadItem {
  image: RgbImage;
  mask: MaskImage;
  /** The network's probabilities on the image, height x width x classes. */
  probs: Float32Array;
}

export interface PixelHeadFit {
  head: PixelHeadWeights;
  /** Mean cross-entropy over the samples in the first and the last epoch. */
  firstLoss: number;
  loss: number;
  samples: number;
  seconds: number;
  /** Where the batches' gradients ran. */
  runtime: 'onnxruntime' | 'js';
}

/** Labelled pixels of a mask (labels below `classes`; the rest is ignore). */
export function labelledPixels(mask: MaskImage, classes: number): number {
  let n = 0;
  for (let i = 0; i < mask.data.length; i++) if (mask.data[i] < classes) n++;
  return n;
}

/** Drawn pixels: each one's raw head input (features and log-probabilities) and its label. */
export interface PixelSamples {
  xs: Float32Array[];
  ys: number[];
}

/**
 * Draws `want` labelled pixels of one image (uniformly, with replacement; among `candidates`, pixel indices,
 * when given) into `into`. Features are computed in bands of rows, so memory stays a band's whatever the
 * image's size.
 */
export async function samplePixels(
  item: PixelHeadItem,
  classes: number,
  want: number,
  rng: SeededRandom,
  into: PixelSamples,
  featuresOf: FeaturesOf = pixelFeatures,
  candidates?: Int32Array,
): Promise<void> {
  const { width: W, height: H } = item.image;
  const picked: number[] = [];
  const n = candidates ? candidates.length : W * H;
  if (n === 0) return;
  for (let tries = 0; picked.length < want && tries < want * 1000; tries++) {
    const p = candidates ? candidates[rng.int(0, n)] : rng.int(0, n);
    if (item.mask.data[p] < classes) picked.push(p);
  }
  picked.sort((a, b) => a - b);
  let next = 0;
  for (let y0 = 0; y0 < H && next < picked.length; y0 += SAMPLE_BAND_ROWS) {
    const y1 = Math.min(H, y0 + SAMPLE_BAND_ROWS);
    if (picked[next] >= y1 * W) continue;
    const planes = await featuresOf(item.image, y0, y1);
    // As many inputs as the features given (the filter features, and any planes after them) and the classes.
    const inputs = planes.length + classes;
    const zero = new Float64Array(inputs);
    const one = new Float64Array(inputs).fill(1);
    for (; next < picked.length && picked[next] < y1 * W; next++) {
      const p = picked[next];
      const x = new Float32Array(inputs);
      headInput(planes, p - y0 * W, item.probs, p * classes, classes, zero, one, x);
      into.xs.push(x);
      into.ys.push(item.mask.data[p]);
    }
  }
}

/** Rows of features held at once while sampling. */
const SAMPLE_BAND_ROWS = 256;

/** The gradient of a batch (sample indices order[s0..s1-1]) summed over its samples into `grads`; returns the summed loss. */
type BatchGradient = (s0: number, s1: number) => number | Promise<number>;

/**
 * Fits a pixel head for `classes` classes on drawn pixels (samplePixels): Adam on mini-batches, the batches'
 * gradients through onnxruntime when it loads (pixelHeadGradientGraph; both cores, native kernels: about 10x
 * faster here), else in plain JS (`runtime` may force either). The same samples and seed give the same head on
 * one machine either way; the two differ by float rounding (tested). `check` is called between epochs and may
 * throw (a cancel). Returns null when no pixel was drawn.
 */
export async function fitPixelHead(
  samples: PixelSamples,
  classes: number,
  options: PixelHeadFitOptions = DEFAULT_PIXEL_HEAD_FIT,
  check: () => void = () => undefined,
  runtime: 'auto' | 'onnxruntime' | 'js' = 'auto',
): Promise<PixelHeadFit | null> {
  const start = Date.now();
  const rng = new SeededRandom(options.seed + 4099);
  const { xs, ys } = samples;
  if (xs.length === 0) return null;
  const inputs = xs[0].length;
  const N = xs.length;
  // Standardise every input by the samples' mean and spread.
  const mean = new Float64Array(inputs);
  const sq = new Float64Array(inputs);
  for (const x of xs)
    for (let j = 0; j < inputs; j++) {
      mean[j] += x[j];
      sq[j] += x[j] * x[j];
    }
  const scale = new Float64Array(inputs);
  for (let j = 0; j < inputs; j++) {
    mean[j] /= N;
    const sd = Math.sqrt(Math.max(0, sq[j] / N - mean[j] * mean[j]));
    scale[j] = sd > 1e-6 ? 1 / sd : 0;
  }
  for (const x of xs) for (let j = 0; j < inputs; j++) x[j] = (x[j] - mean[j]) * scale[j];
  const H = options.hidden;
  const C = classes;
  const init = (n: number, fanIn: number, fanOut: number): Float32Array => {
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    return Float32Array.from({ length: n }, () => rng.range(-limit, limit));
  };
  const w1 = init(inputs * H, inputs, H);
  const b1 = new Float32Array(H);
  const w2 = init(H * C, H, C);
  const b2 = new Float32Array(C);
  const params = [w1, b1, w2, b2];
  const grads = params.map((p) => new Float32Array(p.length));
  const m = params.map((p) => new Float32Array(p.length));
  const v = params.map((p) => new Float32Array(p.length));
  const order = Array.from({ length: N }, (_, i) => i);
  const o = runtime === 'js' || (runtime === 'auto' && inferenceChoice() === 'tfjs') ? null : loadOrt();
  if (runtime === 'onnxruntime' && !o) throw new Error('onnxruntime-node cannot load');
  const native = o ? await nativeGradient(o, { inputs, hidden: H, classes: C }, options.batch) : null;
  const gradient: BatchGradient = native
    ? (s0, s1) => native.run(xs, ys, order, s0, s1, params, grads)
    : jsGradient(xs, ys, order, params, grads, { inputs, hidden: H, classes: C });
  let step = 0;
  let firstLoss = NaN;
  let loss = NaN;
  try {
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      check();
      rng.shuffle(order);
      let lossSum = 0;
      for (let s0 = 0; s0 < N; s0 += options.batch) {
        const s1 = Math.min(N, s0 + options.batch);
        const l = gradient(s0, s1);
        lossSum += typeof l === 'number' ? l : await l;
        step++;
        const size = s1 - s0;
        const lr = options.learningRate;
        const bias1 = 1 - 0.9 ** step;
        const bias2 = 1 - 0.999 ** step;
        for (let q = 0; q < params.length; q++) {
          const p = params[q];
          const gq = grads[q];
          const mq = m[q];
          const vq = v[q];
          const decay = q === 0 || q === 2 ? options.weightDecay : 0;
          for (let j = 0; j < p.length; j++) {
            const g = gq[j] / size + decay * p[j];
            mq[j] = 0.9 * mq[j] + 0.1 * g;
            vq[j] = 0.999 * vq[j] + 0.001 * g * g;
            p[j] -= (lr * (mq[j] / bias1)) / (Math.sqrt(vq[j] / bias2) + 1e-8);
          }
        }
      }
      loss = lossSum / N;
      if (epoch === 0) firstLoss = loss;
      if (!Number.isFinite(loss)) throw new Error(`the pixel head's loss became ${loss} at epoch ${epoch + 1}`);
    }
  } finally {
    await native?.release();
  }
  return {
    head: {
      features: PIXEL_FEATURE_SET,
      inputs,
      hidden: H,
      classes: C,
      mean: Array.from(mean),
      scale: Array.from(scale),
      w1: Array.from(w1),
      b1: Array.from(b1),
      w2: Array.from(w2),
      b2: Array.from(b2),
    },
    firstLoss,
    loss,
    samples: N,
    seconds: (Date.now() - start) / 1000,
    runtime: native ? 'onnxruntime' : 'js',
  };
}

interface HeadShape {
  inputs: number;
  hidden: number;
  classes: number;
}

/** The batch gradient in plain JS: one sample at a time, summed into `grads` (zeroed first). */
function jsGradient(
  xs: Float32Array[],
  ys: number[],
  order: number[],
  params: Float32Array[],
  grads: Float32Array[],
  shape: HeadShape,
): BatchGradient {
  const { inputs, hidden: H, classes: C } = shape;
  const [w1, b1, w2, b2] = params;
  const w = { w1, b1, w2, b2 };
  // The gradients by name: the inner loops index typed arrays held in locals (an array of arrays indexed in
  // the innermost loop made this about 1.2x slower).
  const [gw1, gb1, gw2, gb2] = grads;
  const hidden = new Float32Array(H);
  const prob = new Float32Array(C);
  const dh = new Float32Array(H);
  return (s0, s1) => {
    for (const g of grads) g.fill(0);
    let lossSum = 0;
    for (let s = s0; s < s1; s++) {
      const x = xs[order[s]];
      const y = ys[order[s]];
      headForward(w, inputs, H, C, x, hidden, prob);
      lossSum -= Math.log(Math.max(1e-12, prob[y]));
      // d loss / d logits = prob - onehot
      prob[y] -= 1;
      for (let c = 0; c < C; c++) gb2[c] += prob[c];
      dh.fill(0);
      for (let h = 0; h < H; h++) {
        const hv = hidden[h];
        if (hv <= 0) continue;
        let d = 0;
        const row = h * C;
        for (let c = 0; c < C; c++) {
          gw2[row + c] += hv * prob[c];
          d += w2[row + c] * prob[c];
        }
        dh[h] = d;
        gb1[h] += d;
      }
      for (let j = 0; j < inputs; j++) {
        const xv = x[j];
        if (xv === 0) continue;
        const row = j * H;
        for (let h = 0; h < H; h++) gw1[row + h] += xv * dh[h];
      }
    }
    return lossSum;
  };
}

/**
 * The ONNX graph of a batch's gradient: inputs x [batch, inputs] (standardised), y [batch, classes] (one-hot),
 * w1, b1, w2, b2; outputs their gradients summed over the batch (g_w1 ... g_b2) and the summed cross-entropy.
 */
export function pixelHeadGradientGraph(shape: HeadShape): Uint8Array {
  const { inputs, hidden, classes } = shape;
  const g = new Proto().string(2, 'maskloop-pixel-head-fit');
  const nodes = [
    node('MatMul', ['x', 'w1'], ['h0'], 'hidden/MatMul'),
    node('Add', ['h0', 'b1'], ['h1'], 'hidden/Add'),
    node('Relu', ['h1'], ['a'], 'hidden/Relu'),
    node('MatMul', ['a', 'w2'], ['z0'], 'out/MatMul'),
    node('Add', ['z0', 'b2'], ['z'], 'out/Add'),
    node('Softmax', ['z'], ['p'], 'out/Softmax', [{ name: 'axis', i: 1 }]),
    node('Sub', ['p', 'y'], ['d'], 'dz'),
    node('ReduceSum', ['d', 'axis0'], ['g_b2'], 'g_b2', [{ name: 'keepdims', i: 0 }]),
    node('Gemm', ['a', 'd'], ['g_w2'], 'g_w2', [{ name: 'transA', i: 1 }]),
    node('Gemm', ['d', 'w2'], ['da'], 'da', [{ name: 'transB', i: 1 }]),
    // ReLU's derivative: 1 where the activation is positive (Sign of a >= 0 is 0 or 1).
    node('Sign', ['a'], ['on'], 'relu/on'),
    node('Mul', ['da', 'on'], ['dh'], 'dh'),
    node('ReduceSum', ['dh', 'axis0'], ['g_b1'], 'g_b1', [{ name: 'keepdims', i: 0 }]),
    node('Gemm', ['x', 'dh'], ['g_w1'], 'g_w1', [{ name: 'transA', i: 1 }]),
    node('LogSoftmax', ['z'], ['logp'], 'ce/LogSoftmax', [{ name: 'axis', i: 1 }]),
    node('Mul', ['logp', 'y'], ['ylogp'], 'ce/Mul'),
    node('ReduceSum', ['ylogp'], ['ce_neg'], 'ce/Sum', [{ name: 'keepdims', i: 0 }]),
    node('Neg', ['ce_neg'], ['ce'], 'ce'),
  ];
  nodes.forEach((n) => g.message(1, n));
  g.message(5, int64Tensor('axis0', [0]));
  const ins: [string, (number | string)[]][] = [
    ['x', ['batch', inputs]],
    ['y', ['batch', classes]],
    ['w1', [inputs, hidden]],
    ['b1', [hidden]],
    ['w2', [hidden, classes]],
    ['b2', [classes]],
  ];
  const outs: [string, (number | string)[]][] = [
    ['g_w1', [inputs, hidden]],
    ['g_b1', [hidden]],
    ['g_w2', [hidden, classes]],
    ['g_b2', [classes]],
    ['ce', []],
  ];
  for (const [name, dims] of ins) g.message(11, tensorValueInfo(name, dims));
  for (const [name, dims] of outs) g.message(12, tensorValueInfo(name, dims));
  return onnxModel(g);
}

/** The batch gradient through onnxruntime: a session of pixelHeadGradientGraph, released by the caller. */
async function nativeGradient(
  o: typeof Ort,
  shape: HeadShape,
  batch: number,
): Promise<{
  run: (
    xs: Float32Array[],
    ys: number[],
    order: number[],
    s0: number,
    s1: number,
    params: Float32Array[],
    grads: Float32Array[],
  ) => Promise<number>;
  release: () => Promise<void>;
}> {
  const { inputs, hidden, classes } = shape;
  const session = await o.InferenceSession.create(pixelHeadGradientGraph(shape), sessionOptions());
  const x = new Float32Array(batch * inputs);
  const y = new Float32Array(batch * classes);
  return {
    run: async (xs, ys, order, s0, s1, params, grads) => {
      const n = s1 - s0;
      y.fill(0);
      for (let s = s0; s < s1; s++) {
        x.set(xs[order[s]], (s - s0) * inputs);
        y[(s - s0) * classes + ys[order[s]]] = 1;
      }
      const [w1, b1, w2, b2] = params;
      const out = await session.run({
        x: new o.Tensor('float32', x.subarray(0, n * inputs), [n, inputs]),
        y: new o.Tensor('float32', y.subarray(0, n * classes), [n, classes]),
        w1: new o.Tensor('float32', w1, [inputs, hidden]),
        b1: new o.Tensor('float32', b1, [hidden]),
        w2: new o.Tensor('float32', w2, [hidden, classes]),
        b2: new o.Tensor('float32', b2, [classes]),
      });
      grads[0].set(out.g_w1.data as Float32Array);
      grads[1].set(out.g_b1.data as Float32Array);
      grads[2].set(out.g_w2.data as Float32Array);
      grads[3].set(out.g_b2.data as Float32Array);
      return (out.ce.data as Float32Array)[0];
    },
    release: () => session.release(),
  };
}
