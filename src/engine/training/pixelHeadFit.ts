// The pixel head's fit (see inference/pixelHead.ts): labelled pixels sampled from the training images, their
// filter features and the network's log-probabilities as inputs, a one-hidden-layer perceptron trained with
// Adam on the cross-entropy. Plain arrays, seeded: the same images and seed give the same head anywhere.
import type { MaskImage, RgbImage } from '../../masks/maskImage';
import { SeededRandom } from '../../masks/seededRandom';
import type { PixelHeadWeights } from '../../protocol/modelTypes';
import { PIXEL_FEATURE_COUNT, pixelFeatures } from '../inference/pixelFeatures';
import { PIXEL_FEATURE_SET, headForward, headInput } from '../inference/pixelHead';

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
 * Draws `want` labelled pixels of one image (uniformly, with replacement) into `into`. Features are computed
 * in bands of rows, so memory stays a band's whatever the image's size.
 */
export function samplePixels(
  item: PixelHeadItem,
  classes: number,
  want: number,
  rng: SeededRandom,
  into: PixelSamples,
): void {
  const { width: W, height: H } = item.image;
  const inputs = PIXEL_FEATURE_COUNT + classes;
  const picked: number[] = [];
  const n = W * H;
  for (let tries = 0; picked.length < want && tries < want * 1000; tries++) {
    const p = rng.int(0, n);
    if (item.mask.data[p] < classes) picked.push(p);
  }
  picked.sort((a, b) => a - b);
  const zero = new Float64Array(inputs);
  const one = new Float64Array(inputs).fill(1);
  let next = 0;
  for (let y0 = 0; y0 < H && next < picked.length; y0 += SAMPLE_BAND_ROWS) {
    const y1 = Math.min(H, y0 + SAMPLE_BAND_ROWS);
    if (picked[next] >= y1 * W) continue;
    const planes = pixelFeatures(item.image, y0, y1);
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

/**
 * Fits a pixel head for `classes` classes on drawn pixels (samplePixels). `check` is called between epochs
 * and may throw (a cancel). Returns null when no pixel was drawn.
 */
export function fitPixelHead(
  samples: PixelSamples,
  classes: number,
  options: PixelHeadFitOptions = DEFAULT_PIXEL_HEAD_FIT,
  check: () => void = () => undefined,
): PixelHeadFit | null {
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
  const hidden = new Float32Array(H);
  const prob = new Float32Array(C);
  const dh = new Float32Array(H);
  const order = Array.from({ length: N }, (_, i) => i);
  let step = 0;
  let firstLoss = NaN;
  let loss = NaN;
  const w = { w1, b1, w2, b2 };
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    check();
    rng.shuffle(order);
    let lossSum = 0;
    for (let s0 = 0; s0 < N; s0 += options.batch) {
      for (const g of grads) g.fill(0);
      const s1 = Math.min(N, s0 + options.batch);
      for (let s = s0; s < s1; s++) {
        const x = xs[order[s]];
        const y = ys[order[s]];
        headForward(w, inputs, H, C, x, hidden, prob);
        lossSum -= Math.log(Math.max(1e-12, prob[y]));
        // d loss / d logits = prob - onehot
        prob[y] -= 1;
        for (let c = 0; c < C; c++) grads[3][c] += prob[c];
        dh.fill(0);
        for (let h = 0; h < H; h++) {
          if (hidden[h] <= 0) continue;
          let d = 0;
          for (let c = 0; c < C; c++) {
            grads[2][h * C + c] += hidden[h] * prob[c];
            d += w2[h * C + c] * prob[c];
          }
          dh[h] = d;
          grads[1][h] += d;
        }
        for (let j = 0; j < inputs; j++) {
          const xv = x[j];
          if (xv === 0) continue;
          const row = j * H;
          for (let h = 0; h < H; h++) grads[0][row + h] += xv * dh[h];
        }
      }
      step++;
      const size = s1 - s0;
      const lr = options.learningRate;
      const bias1 = 1 - 0.9 ** step;
      const bias2 = 1 - 0.999 ** step;
      for (let q = 0; q < params.length; q++) {
        const p = params[q];
        const decay = q === 0 || q === 2 ? options.weightDecay : 0;
        for (let j = 0; j < p.length; j++) {
          const g = grads[q][j] / size + decay * p[j];
          m[q][j] = 0.9 * m[q][j] + 0.1 * g;
          v[q][j] = 0.999 * v[q][j] + 0.001 * g * g;
          p[j] -= (lr * (m[q][j] / bias1)) / (Math.sqrt(v[q][j] / bias2) + 1e-8);
        }
      }
    }
    loss = lossSum / N;
    if (epoch === 0) firstLoss = loss;
    if (!Number.isFinite(loss)) throw new Error(`the pixel head's loss became ${loss} at epoch ${epoch + 1}`);
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
  };
}
