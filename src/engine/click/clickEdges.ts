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

/** Box sums of radius r over a plane, read at the pixels of `box`, the plane's borders repeated (numpy 'edge'). */
function boxSums(plane: (x: number, y: number) => number, width: number, height: number, box: Box, r: number) {
  const ex0 = box.x0 - r;
  const ey0 = box.y0 - r;
  const W = box.x1 - box.x0 + 2 * r;
  const H = box.y1 - box.y0 + 2 * r;
  const c = new Float64Array((W + 1) * (H + 1));
  for (let y = 0; y < H; y++) {
    const sy = Math.min(height - 1, Math.max(0, ey0 + y));
    let row = 0;
    for (let x = 0; x < W; x++) {
      row += plane(Math.min(width - 1, Math.max(0, ex0 + x)), sy);
      c[(y + 1) * (W + 1) + x + 1] = c[y * (W + 1) + x + 1] + row;
    }
  }
  const bw = box.x1 - box.x0;
  const out = new Float64Array(bw * (box.y1 - box.y0));
  const k = 2 * r + 1;
  for (let y = 0; y < box.y1 - box.y0; y++)
    for (let x = 0; x < bw; x++)
      out[y * bw + x] =
        c[(y + k) * (W + 1) + x + k] - c[y * (W + 1) + x + k] - c[(y + k) * (W + 1) + x] + c[y * (W + 1) + x];
  return out;
}

/**
 * The band's pixels (image indices) and their features, classes one-hot and class x 5-pixel mean appended:
 * EDGE_BASE_FEATURES + 2 * classes values a pixel.
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
  const A = (x: number, y: number): number => (answer[y * width + x] ? 1 : 0);
  const rgb = (c: number) => (x: number, y: number) => data[(y * width + x) * 3 + c] / 255;
  const b1 = boxSums(A, width, height, box, 1);
  const b2 = boxSums(A, width, height, box, 2);
  const b4 = boxSums(A, width, height, box, 4);
  const R = COLOUR_RADIUS;
  const nIn = boxSums(A, width, height, box, R);
  const sIn = [0, 1, 2].map((c) => boxSums((x, y) => A(x, y) * rgb(c)(x, y), width, height, box, R));
  const sAll = [0, 1, 2].map((c) => boxSums(rgb(c), width, height, box, R));
  const grey = (x: number, y: number): number => (rgb(0)(x, y) + rgb(1)(x, y) + rgb(2)(x, y)) / 3;
  const bw = box.x1 - box.x0;
  const inputs = edgeInputs(classes);
  const pixels: number[] = [];
  const rows: number[] = [];
  for (let y = box.y0; y < box.y1; y++)
    for (let x = box.x0; x < box.x1; x++) {
      const j = (y - box.y0) * bw + (x - box.x0);
      const m2 = b2[j] / 25;
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
      const nin = nIn[j];
      const nout = (2 * R + 1) ** 2 - nin;
      let di = 0;
      let dout = 0;
      const colour: number[] = [];
      for (let c = 0; c < 3; c++) {
        const v = rgb(c)(x, y);
        di += (v - sIn[c][j] / Math.max(nin, 1)) ** 2;
        dout += (v - (sAll[c][j] - sIn[c][j]) / Math.max(nout, 1)) ** 2;
        colour.push(v);
      }
      di = Math.sqrt(di);
      dout = Math.sqrt(dout);
      pixels.push(y * width + x);
      rows.push(
        A(x, y),
        b1[j] / 9,
        m2,
        b4[j] / 81,
        Math.sqrt(gx * gx + gy * gy) * 4,
        ...colour,
        di * 4,
        dout * 4,
        (dout - di) * 4,
      );
      for (let c = 0; c < classes; c++) rows.push(c === classIndex ? 1 : 0);
      for (let c = 0; c < classes; c++) rows.push(c === classIndex ? m2 - 0.5 : 0);
    }
  return { pixels: Int32Array.from(pixels), features: Float32Array.from(rows), inputs };
}

/** The head's weights: inputs standardised by `mean` and `scale`, then `w1` (inputs x hidden, row-major), ReLU, `w2`. */
export type EdgeHead = Pick<ClickEdgesWeights, 'inputs' | 'hidden' | 'mean' | 'scale' | 'w1' | 'b1' | 'w2' | 'b2'>;

/** The head's probability that a band pixel (standardised row x) is inside. */
export function edgeProbability(head: EdgeHead, row: ArrayLike<number>, offset: number, scratch: Float32Array): number {
  const { inputs: d, hidden: h, w1, b1, w2 } = head;
  let o = head.b2;
  for (let k = 0; k < h; k++) scratch[k] = b1[k];
  for (let j = 0; j < d; j++) {
    const v = (row[offset + j] - head.mean[j]) * head.scale[j];
    if (v === 0) continue;
    const r = j * h;
    for (let k = 0; k < h; k++) scratch[k] += v * w1[r + k];
  }
  for (let k = 0; k < h; k++) if (scratch[k] > 0) o += scratch[k] * w2[k];
  return 1 / (1 + Math.exp(-o));
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
  const scratch = new Float32Array(head.hidden);
  let out = answer;
  for (let k = 0; k < f.pixels.length; k++) {
    const p = edgeProbability(head, f.features, k * f.inputs, scratch);
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
