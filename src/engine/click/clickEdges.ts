// Learnt edges for click answers: a small perceptron, fitted on the decoder's own answers beside masks a person
// saved (clickEdgesFit.ts), redraws the pixels within EDGE_BAND of an answer's edge from the answer's local
// shape, the image's colours and gradient, and the object's class. Its features are computed on the band's box
// only (plus the halo they read). Pure.
import type { RgbImage } from '../../masks/maskImage';
import type { ClickEdgesWeights } from '../../protocol/modelTypes';
import type { Box } from '../../masks/maskDiff';
import { SeededRandom } from '../../masks/seededRandom';
import type { ClickPoint } from './honourClicks';

/** Pixels either side of the answer's edge that the head may redraw (chessboard distance). */
export const EDGE_BAND = 2;
/** Radius of the local inside/outside colour means. */
const COLOUR_RADIUS = 5;
/** Base features before the class's: the answer, its 3 box means, the gradient, rgb, 3 colour distances. */
export const EDGE_BASE_FEATURES = 11;

/** Features a pixel for a model of `classes` classes: the base ones, the class one-hot, the class x 5-pixel mean. */
export const edgeInputs = (classes: number): number => EDGE_BASE_FEATURES + 2 * classes;

/** The box of the answer's band (pixels within EDGE_BAND of a pixel of the other side), or null without an edge. */
export function bandBox(answer: Uint8Array, width: number, height: number): Box | null {
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const a = answer[i] ? 1 : 0;
      const edge =
        (x + 1 < width && (answer[i + 1] ? 1 : 0) !== a) || (y + 1 < height && (answer[i + width] ? 1 : 0) !== a);
      if (!edge) continue;
      if (x < x0) x0 = x;
      if (y < y0) y0 = y;
      if (x + 1 > x1) x1 = x + 1;
      if (y + 1 > y1) y1 = y + 1;
    }
  if (x1 < 0) return null;
  return {
    x0: Math.max(0, x0 - EDGE_BAND),
    y0: Math.max(0, y0 - EDGE_BAND),
    x1: Math.min(width, x1 + 1 + EDGE_BAND),
    y1: Math.min(height, y1 + 1 + EDGE_BAND),
  };
}

/**
 * Integral images of planes over `box` and a halo of `halo` pixels, the image's borders repeated (numpy's
 * 'edge' padding): box sums of any radius up to `halo` at the box's pixels.
 */
class BoxSums {
  private readonly W: number;
  private readonly H: number;
  private readonly ox: number;
  private readonly oy: number;

  constructor(
    readonly box: Box,
    readonly halo: number,
  ) {
    this.W = box.x1 - box.x0 + 2 * halo;
    this.H = box.y1 - box.y0 + 2 * halo;
    this.ox = box.x0 - halo;
    this.oy = box.y0 - halo;
  }

  /** The integral image of a plane given by its value at each (clamped) image pixel index. */
  integral(width: number, height: number, at: (i: number) => number): Float64Array {
    const { W, H, ox, oy } = this;
    const c = new Float64Array((W + 1) * (H + 1));
    for (let y = 0; y < H; y++) {
      const row0 = Math.min(height - 1, Math.max(0, oy + y)) * width;
      let run = 0;
      for (let x = 0; x < W; x++) {
        run += at(row0 + Math.min(width - 1, Math.max(0, ox + x)));
        c[(y + 1) * (W + 1) + x + 1] = c[y * (W + 1) + x + 1] + run;
      }
    }
    return c;
  }

  /** The sum over the (2r + 1)-square about image pixel (x, y) of the box, from an integral image. */
  sum(c: Float64Array, x: number, y: number, r: number): number {
    const W1 = this.W + 1;
    const x0 = x - this.ox - r;
    const y0 = y - this.oy - r;
    const x1 = x0 + 2 * r + 1;
    const y1 = y0 + 2 * r + 1;
    return c[y1 * W1 + x1] - c[y0 * W1 + x1] - c[y1 * W1 + x0] + c[y0 * W1 + x0];
  }
}

/**
 * The band's pixels (image indices) and their features, classes one-hot and class x 5-pixel mean appended:
 * EDGE_BASE_FEATURES + 2 * classes values a pixel. Computed on the band's box only.
 */
export function edgeFeatures(
  answer: Uint8Array,
  image: RgbImage,
  classIndex: number,
  classes: number,
): { pixels: Int32Array; features: Float32Array; inputs: number } | null {
  const { width, height, data } = image;
  const box = bandBox(answer, width, height);
  if (!box) return null;
  const R = COLOUR_RADIUS;
  const sums = new BoxSums(box, R);
  const A = sums.integral(width, height, (i) => (answer[i] ? 1 : 0));
  const all = [0, 1, 2].map((c) => sums.integral(width, height, (i) => data[i * 3 + c] / 255));
  const inside = [0, 1, 2].map((c) => sums.integral(width, height, (i) => (answer[i] ? data[i * 3 + c] / 255 : 0)));
  const grey = (x: number, y: number): number => {
    const i = (y * width + x) * 3;
    return (data[i] / 255 + data[i + 1] / 255 + data[i + 2] / 255) / 3;
  };
  const inputs = edgeInputs(classes);
  // The band first (pixels whose 5-pixel square holds both sides), then its features in one array.
  const bw = box.x1 - box.x0;
  const mean2 = new Float64Array(bw * (box.y1 - box.y0));
  let count = 0;
  for (let y = box.y0; y < box.y1; y++)
    for (let x = box.x0; x < box.x1; x++) {
      const m2 = sums.sum(A, x, y, 2) / 25;
      mean2[(y - box.y0) * bw + x - box.x0] = m2;
      if (m2 > 0 && m2 < 1) count++;
    }
  const pixels = new Int32Array(count);
  const features = new Float32Array(count * inputs);
  const area = (2 * R + 1) ** 2;
  let k = 0;
  for (let y = box.y0; y < box.y1; y++)
    for (let x = box.x0; x < box.x1; x++) {
      const m2 = mean2[(y - box.y0) * bw + x - box.x0];
      if (!(m2 > 0 && m2 < 1)) continue;
      // numpy.gradient: central differences inside, one-sided at the image's borders.
      const gx =
        x === 0
          ? grey(1, y) - grey(0, y)
          : x === width - 1
            ? grey(x, y) - grey(x - 1, y)
            : (grey(x + 1, y) - grey(x - 1, y)) / 2;
      const gy =
        y === 0
          ? grey(x, 1) - grey(x, 0)
          : y === height - 1
            ? grey(x, y) - grey(x, y - 1)
            : (grey(x, y + 1) - grey(x, y - 1)) / 2;
      const nin = sums.sum(A, x, y, R);
      const nout = area - nin;
      const i = y * width + x;
      const f = k * inputs;
      let di = 0;
      let dout = 0;
      for (let c = 0; c < 3; c++) {
        const v = data[i * 3 + c] / 255;
        const sIn = sums.sum(inside[c], x, y, R);
        di += (v - sIn / Math.max(nin, 1)) ** 2;
        dout += (v - (sums.sum(all[c], x, y, R) - sIn) / Math.max(nout, 1)) ** 2;
        features[f + 5 + c] = v;
      }
      di = Math.sqrt(di);
      dout = Math.sqrt(dout);
      features[f] = answer[i] ? 1 : 0;
      features[f + 1] = sums.sum(A, x, y, 1) / 9;
      features[f + 2] = m2;
      features[f + 3] = sums.sum(A, x, y, 4) / 81;
      features[f + 4] = Math.sqrt(gx * gx + gy * gy) * 4;
      features[f + 8] = di * 4;
      features[f + 9] = dout * 4;
      features[f + 10] = (dout - di) * 4;
      // The class one-hot and the class x 5-pixel mean (the array's zeros elsewhere).
      if (classIndex >= 0 && classIndex < classes) {
        features[f + EDGE_BASE_FEATURES + classIndex] = 1;
        features[f + EDGE_BASE_FEATURES + classes + classIndex] = m2 - 0.5;
      }
      pixels[k++] = i;
    }
  return { pixels, features, inputs };
}

/** The head's weights: inputs standardised by `mean` and `scale`, then `w1` (inputs x hidden, row-major), ReLU, `w2`. */
export type EdgeHead = Pick<ClickEdgesWeights, 'inputs' | 'hidden' | 'mean' | 'scale' | 'w1' | 'b1' | 'w2' | 'b2'>;

/**
 * The head prepared to run on raw feature rows: the standardisation folded into the first layer (its weights
 * scaled, its biases given every input's mean), so a row's zero values (the class one-hot's other classes) cost
 * nothing.
 */
export function preparedHead(head: EdgeHead): (row: ArrayLike<number>, offset: number) => number {
  const { inputs: d, hidden: h } = head;
  const w1 = new Float64Array(d * h);
  const b1 = Float64Array.from(head.b1);
  for (let j = 0; j < d; j++)
    for (let k = 0; k < h; k++) {
      w1[j * h + k] = head.scale[j] * head.w1[j * h + k];
      b1[k] -= head.mean[j] * w1[j * h + k];
    }
  const w2 = head.w2;
  const z = new Float64Array(h);
  return (row, offset) => {
    z.set(b1);
    for (let j = 0; j < d; j++) {
      const v = row[offset + j];
      if (v === 0) continue;
      const r = j * h;
      for (let k = 0; k < h; k++) z[k] += v * w1[r + k];
    }
    let o = head.b2;
    for (let k = 0; k < h; k++) if (z[k] > 0) o += z[k] * w2[k];
    return 1 / (1 + Math.exp(-o));
  };
}

export interface EdgeFitOptions {
  hidden: number;
  steps: number;
  batch: number;
  learningRate: number;
  seed: number;
}

/** As measured in docs/benchmarks.md ("Edges learnt from the saved masks"): 1500 steps of 1024 pixels, 6.5 s there. */
export const EDGE_FIT: Omit<EdgeFitOptions, 'seed'> = { hidden: 32, steps: 1500, batch: 1024, learningRate: 3e-3 };

/** Fits the head on band pixels (rows of `inputs` features, labels 1 inside) with Adam on the cross-entropy. */
export function fitEdgeHead(rows: Float32Array, labels: Uint8Array, inputs: number, o: EdgeFitOptions): EdgeHead {
  const n = labels.length;
  if (n === 0 || rows.length !== n * inputs) throw new Error(`fitEdgeHead: ${n} labels for ${rows.length} values`);
  const d = inputs;
  const h = o.hidden;
  const mean = new Float64Array(d);
  const scale = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += rows[i * d + j] / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) scale[j] += (rows[i * d + j] - mean[j]) ** 2 / n;
  for (let j = 0; j < d; j++) scale[j] = 1 / (Math.sqrt(scale[j]) + 1e-6);
  const rand = new SeededRandom(o.seed);
  const w1 = Float32Array.from({ length: d * h }, () => rand.normal() / Math.sqrt(d));
  const b1 = new Float32Array(h);
  const w2 = Float32Array.from({ length: h }, () => rand.normal() / Math.sqrt(h));
  const params = [w1, b1, w2, new Float32Array(1)];
  const m = params.map((p) => new Float32Array(p.length));
  const v = params.map((p) => new Float32Array(p.length));
  const grads = params.map((p) => new Float32Array(p.length));
  const x = new Float32Array(d);
  const z = new Float32Array(h);
  for (let step = 1; step <= o.steps; step++) {
    for (const g of grads) g.fill(0);
    for (let s = 0; s < o.batch; s++) {
      const i = rand.int(0, n);
      for (let j = 0; j < d; j++) x[j] = (rows[i * d + j] - mean[j]) * scale[j];
      let out = params[3][0];
      for (let k = 0; k < h; k++) {
        let a = b1[k];
        for (let j = 0; j < d; j++) a += x[j] * w1[j * h + k];
        z[k] = a;
        if (a > 0) out += a * w2[k];
      }
      const err = (1 / (1 + Math.exp(-out)) - labels[i]) / o.batch;
      grads[3][0] += err;
      for (let k = 0; k < h; k++) {
        if (z[k] <= 0) continue;
        grads[2][k] += err * z[k];
        const gz = err * w2[k];
        grads[1][k] += gz;
        for (let j = 0; j < d; j++) grads[0][j * h + k] += gz * x[j];
      }
    }
    const c1 = 1 - 0.9 ** step;
    const c2 = 1 - 0.999 ** step;
    params.forEach((p, q) => {
      for (let i = 0; i < p.length; i++) {
        m[q][i] = 0.9 * m[q][i] + 0.1 * grads[q][i];
        v[q][i] = 0.999 * v[q][i] + 0.001 * grads[q][i] ** 2;
        p[i] -= (o.learningRate * (m[q][i] / c1)) / (Math.sqrt(v[q][i] / c2) + 1e-8);
      }
    });
  }
  return {
    inputs: d,
    hidden: h,
    mean: Array.from(mean),
    scale: Array.from(scale),
    w1: Array.from(w1),
    b1: Array.from(b1),
    w2: Array.from(w2),
    b2: params[3][0],
  };
}

/** The feature set's name stored with a head (ClickEdgesWeights.features). */
export const CLICK_EDGES_FEATURES = 'click-edges-1';

/** Why stored learnt edges cannot run (another feature set, wrong sizes), or null when they can. */
export function edgesProblem(w: ClickEdgesWeights): string | null {
  if (w.features !== CLICK_EDGES_FEATURES) return `feature set ${w.features}, not ${CLICK_EDGES_FEATURES}`;
  const d = edgeInputs(w.classes);
  const h = w.hidden;
  const sizes: [string, number, number][] = [
    ['inputs', w.inputs, d],
    ['mean', w.mean.length, d],
    ['scale', w.scale.length, d],
    ['w1', w.w1.length, d * h],
    ['b1', w.b1.length, h],
    ['w2', w.w2.length, h],
  ];
  const bad = sizes.find(([, got, want]) => got !== want);
  if (bad) return `${bad[0]} has ${bad[1]} values, ${bad[2]} expected`;
  if (![...w.mean, ...w.scale, ...w.w1, ...w.b1, ...w.w2, w.b2].every(Number.isFinite)) return 'a weight is not finite';
  return null;
}

/** Band pixels whose probability lies within this of 0.5 keep the answer's value. */
export const EDGE_MARGIN = 0.1;

/**
 * The answer with its band redrawn by the head where it is sure (|p - 0.5| > margin); the clicked pixels keep
 * the answer's value. Returns the answer itself when nothing changed.
 */
export function redrawEdges(
  answer: Uint8Array,
  image: RgbImage,
  classIndex: number,
  head: EdgeHead & { classes: number },
  points: readonly ClickPoint[],
  margin = EDGE_MARGIN,
): Uint8Array {
  const f = edgeFeatures(answer, image, classIndex, head.classes);
  if (!f || f.inputs !== head.inputs) return answer;
  const probability = preparedHead(head);
  let out = answer;
  for (let k = 0; k < f.pixels.length; k++) {
    const p = probability(f.features, k * f.inputs);
    if (Math.abs(p - 0.5) <= margin) continue;
    const want = p > 0.5 ? 1 : 0;
    const i = f.pixels[k];
    if ((answer[i] ? 1 : 0) === want) continue;
    if (out === answer) out = answer.slice();
    out[i] = want;
  }
  if (out === answer) return answer;
  for (const pt of points) {
    const x = Math.floor(pt.x);
    const y = Math.floor(pt.y);
    if (x < 0 || y < 0 || x >= image.width || y >= image.height) continue;
    out[y * image.width + x] = answer[y * image.width + x];
  }
  return out;
}
