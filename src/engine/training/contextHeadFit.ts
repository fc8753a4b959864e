// The context head's fit (network/contextHead.ts): full-batch, L2-regularised softmax regression on the frozen
// encoder's features of whole training images, of them resized by 0.75 and 1.5, and of the mirror images of
// all three.
// Why: the decoder, trained on crops, over-painted whole regions of new images after a few masks (0.4M
// weights fitted to 2-3 images). A regularised linear read-out over-fits far less, and it is fitted on the
// features inference sees (whole images, not crops). The decoder then mostly refines the read-out's edges.
// Measured in docs/benchmarks.md; described in docs/engine.md ("The context head").
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type * as Ort from 'onnxruntime-node';
import type { MaskImage, RgbImage } from '../../masks/maskImage';
import { SeededRandom } from '../../masks/seededRandom';
import { normalizePixel } from '../network/networkInput';
import { upsampleBilinear } from '../network/bilinearUpsample';
import { CONTEXT_LAYERS } from '../network/contextHead';
import { coveringWindows, scaledWindow } from '../network/contextWindows';
import { fitSoftmaxRegression, standardiseColumns } from './softmaxRegression';
import { disposeGraph, foldGraph } from '../inference/foldedGraph';
import { exportOnnxOutputs } from '../inference/onnxExport';
import { inferenceChoice, loadOrt, sessionOptions } from '../inference/onnxInference';

export interface ContextFitSettings {
  /** L2 penalty on the standardised weights. */
  l2: number;
  /** Full-batch Adam steps and their learning rate. */
  steps: number;
  learningRate: number;
  /** Stride-8 cells drawn per image at most, and in all. */
  cellsPerImage: number;
  maxCells: number;
  /**
   * Images larger than this (either side) are read through windows of this size that tile the whole image (the
   * last flush with its far edge), so every labelled pixel counts, objects at every border included.
   */
  window: number;
  /** Also fit on each window mirrored left-right (its cells share the image's budget). */
  mirror: boolean;
  /** Also fit on each window resized by these factors (and on their mirror images): objects seen at other sizes. */
  scales: readonly number[];
  seed: number;
}

export const DEFAULT_CONTEXT_FIT: ContextFitSettings = {
  l2: 0.03,
  steps: 300,
  learningRate: 0.01,
  cellsPerImage: 4096,
  maxCells: 16384,
  window: 1024,
  mirror: true,
  scales: [0.75, 1.5],
  seed: 0,
};

/**
 * The context head's fit inside a fine-tune. The resized views are used when the head is the whole fine-tune
 * (0 epochs), not when the decoder trains on top of it: in the composite loop they cut the fast fine-tune's
 * corrections on all three scene sets, but the default's decoder then over-painted more on two of them
 * (docs/benchmarks.md).
 */
export function contextFitFor(epochs: number, seed: number): ContextFitSettings {
  return { ...DEFAULT_CONTEXT_FIT, scales: epochs === 0 ? DEFAULT_CONTEXT_FIT.scales : [], seed };
}

/**
 * Normalised input of a window, padded (by reflection at the image's border) to a multiple of 16 as inference
 * pads it; of the image mirrored left-right when asked (the window then covers the same pixels, mirrored).
 */
function windowTensor(image: RgbImage, x0: number, y0: number, w: number, h: number, mirror: boolean): tf.Tensor4D {
  const pw = Math.ceil(w / 16) * 16;
  const ph = Math.ceil(h / 16) * 16;
  const reflect = (i: number, n: number): number => (i < n ? i : Math.max(0, 2 * (n - 1) - i));
  // Column c of the mirrored image is column W - 1 - c of the image; its window starts at W - x0 - w.
  const vx0 = mirror ? image.width - x0 - w : x0;
  const column = (c: number): number => (mirror ? image.width - 1 - c : c);
  const out = new Float32Array(pw * ph * 3);
  for (let y = 0; y < ph; y++) {
    const sy = reflect(y0 + y, image.height);
    for (let x = 0; x < pw; x++) {
      const si = (sy * image.width + column(reflect(vx0 + x, image.width))) * 3;
      const o = (y * pw + x) * 3;
      for (let c = 0; c < 3; c++) out[o + c] = normalizePixel(image.data[si + c]);
    }
  }
  return tf.tensor4d(out, [1, ph, pw, 3]);
}

/** The encoder's feature maps of a normalised input [1, H, W, 3], in the read-outs' order. */
type FeatureForward = (x: tf.Tensor4D) => Promise<tf.Tensor4D[]>;

/** Largest difference from TF.js tolerated in the check of the exported feature graph (ReLU6 features, 0-6). */
const FEATURE_TOLERANCE = 1e-3;

/**
 * The encoder's feature maps through onnxruntime (both cores, native kernels): the `features` model exported
 * from its folded graph with one output per map, checked against TF.js on a fixed input; null when
 * onnxruntime does not load, is not chosen, the export fails or the check does. `release` frees the session.
 */
async function onnxFeatures(
  features: tfl.LayersModel,
): Promise<{ forward: FeatureForward; release: () => Promise<void> } | null> {
  if (inferenceChoice() === 'tfjs' || !['wasm', 'cpu'].includes(tf.getBackend())) return null;
  const o = loadOrt();
  if (!o) return null;
  const graph = foldGraph(features);
  if (!graph) return null;
  let bytes: Uint8Array;
  try {
    const channels = features.outputs.map((t) => t.shape[3] as number);
    bytes = await exportOnnxOutputs(
      graph,
      graph.outputs.map((tensor, i) => ({ tensor, name: `f${i}`, channels: channels[i] })),
    );
  } finally {
    disposeGraph(graph);
  }
  let session: Ort.InferenceSession;
  try {
    // With a memory arena: the session lives for one fit, and without one every run faulted in its
    // activations afresh (1.0-1.1 s against 0.4 s for a street round's 33 passes).
    session = await o.InferenceSession.create(bytes, sessionOptions(true));
  } catch {
    return null;
  }
  const count = graph.outputs.length;
  const forward: FeatureForward = async (x) => {
    const [, h, w] = x.shape;
    const out = await session.run({ image: new o.Tensor('float32', (await x.data()) as Float32Array, [1, h, w, 3]) });
    return Array.from({ length: count }, (_, i) => {
      const t = out[`f${i}`];
      return tf.tensor4d(t.data as Float32Array, t.dims as [number, number, number, number]);
    });
  };
  const probe = tf.randomUniform([1, 64, 64, 3], -1, 1, 'float32', 23) as tf.Tensor4D;
  let diff = Infinity;
  try {
    const ref = features.predict(probe) as tf.Tensor4D[];
    const got = await forward(probe).catch(() => null);
    if (got) {
      diff = 0;
      for (let i = 0; i < count; i++) {
        const [a, b] = [await ref[i].data(), await got[i].data()];
        if (a.length !== b.length) diff = Infinity;
        else for (let j = 0; j < a.length; j++) diff = Math.max(diff, Math.abs(a[j] - b[j]));
      }
    }
    tf.dispose([...ref, ...(got ?? [])]);
  } finally {
    probe.dispose();
  }
  if (!(diff <= FEATURE_TOLERANCE)) {
    await session.release();
    return null;
  }
  return { forward, release: () => session.release() };
}

/**
 * Rows of the context head's design matrix for one view of an image's window (mirrored or not): the read-outs'
 * features, each upsampled bilinearly to the stride-8 grid (the head is linear, so that upsampling commutes
 * with it), one row per 8x8 cell, and each cell's class fractions (ignored pixels left out; cells with no
 * labelled pixel dropped).
 */
async function viewRows(
  features: FeatureForward,
  image: RgbImage,
  mask: MaskImage,
  numClasses: number,
  cellsPerView: number,
  window: { x0: number; y0: number; w: number; h: number },
  mirror: boolean,
  rng: SeededRandom,
): Promise<{ x: Float32Array; y: Float32Array; rows: number; dims: number }> {
  const { x0, y0, w, h } = window;
  const input = windowTensor(image, x0, y0, w, h, mirror);
  const maps = await features(input);
  input.dispose();
  const feats = tf.tidy(() => {
    const grid = maps[0].shape[1];
    return tf.concat(
      maps.map((m) => (m.shape[1] === grid ? m : upsampleBilinear(m, grid / m.shape[1]))),
      3,
    );
  });
  tf.dispose(maps);
  const [, gh, gw, dims] = feats.shape;
  // Read asynchronously: GPU backends cannot read synchronously under Node.
  const data = (await feats.data()) as Float32Array;
  feats.dispose();
  const cells: number[] = [];
  const fractions: number[][] = [];
  for (let cy = 0; cy < gh; cy++) {
    for (let cx = 0; cx < gw; cx++) {
      const counts = new Array<number>(numClasses).fill(0);
      let n = 0;
      for (let y = cy * 8; y < Math.min(cy * 8 + 8, h); y++) {
        for (let u = cx * 8; u < Math.min(cx * 8 + 8, w); u++) {
          // Column u of the view is column x0 + u of the image, or x0 + w - 1 - u when the view is mirrored.
          const v = mask.data[(y0 + y) * mask.width + x0 + (mirror ? w - 1 - u : u)];
          if (v < numClasses) {
            counts[v]++;
            n++;
          }
        }
      }
      if (n === 0) continue;
      cells.push(cy * gw + cx);
      fractions.push(counts.map((c) => c / n));
    }
  }
  // A seeded subsample when the view has more cells than its share.
  for (let i = cells.length - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [cells[i], cells[j]] = [cells[j], cells[i]];
    [fractions[i], fractions[j]] = [fractions[j], fractions[i]];
  }
  const rows = Math.min(cells.length, cellsPerView);
  const x = new Float32Array(rows * dims);
  const y = new Float32Array(rows * numClasses);
  for (let r = 0; r < rows; r++) {
    x.set(data.subarray(cells[r] * dims, cells[r] * dims + dims), r * dims);
    y.set(fractions[r], r * numClasses);
  }
  return { x, y, rows, dims };
}

export interface ContextFitResult {
  cells: number;
  /** Where the regression ran (softmaxRegression.ts). */
  runtime: 'onnxruntime' | 'tfjs';
  /** Where the encoder's passes over the images ran. */
  features: 'onnxruntime' | 'tfjs';
  /** The fitted head's final loss on its cells: mean cross-entropy with the soft labels, plus the L2 term. */
  loss: number;
  seconds: number;
}

/**
 * Fits the context head of `model` on whole training images (in windows that cover each image when it is larger
 * than `settings.window`), on those windows resized by each of `settings.scales`, and on the mirror images of
 * these views unless settings say otherwise, and writes its weights: standardised
 * features, L2-regularised softmax regression, full batch, Adam;
 * the standardisation is folded into the 1x1 convolutions. The decoder head's bias is set to zero, so the
 * network's logits start from the fitted read-out. `check` throws to cancel (it is called between images and steps).
 */
export async function fitContextHead(
  model: tfl.LayersModel,
  train: { image: RgbImage; mask: MaskImage }[],
  settings: ContextFitSettings = DEFAULT_CONTEXT_FIT,
  check: () => void = () => undefined,
): Promise<ContextFitResult> {
  const start = Date.now();
  // The read-outs present, stride 8 first: models made before the extra stride-16 read-out have two.
  const readOuts = [CONTEXT_LAYERS.s8, CONTEXT_LAYERS.s16, CONTEXT_LAYERS.s16b]
    .filter((n) => model.layers.some((l) => l.name === n))
    .map((n) => model.getLayer(n));
  const numClasses = model.outputs[0].shape[3] as number;
  const features = tfl.model({ inputs: model.inputs, outputs: readOuts.map((l) => l.input as tfl.SymbolicTensor) });
  // The encoder's passes through onnxruntime where it loads (checked against TF.js), else TF.js.
  const viaOnnx = await onnxFeatures(features);
  const forward: FeatureForward =
    viaOnnx?.forward ?? ((x) => Promise.resolve(tf.tidy(() => features.predict(x) as tf.Tensor4D[])));
  const rng = new SeededRandom(settings.seed + 104729);
  const views = (settings.mirror ? 2 : 1) * (1 + settings.scales.length);
  const perImage = Math.min(settings.cellsPerImage, Math.floor(settings.maxCells / train.length));
  const parts: { x: Float32Array; y: Float32Array; rows: number }[] = [];
  let dims = 0;
  try {
    for (const t of train) {
      const windows = coveringWindows(t.image.width, t.image.height, settings.window);
      // The image's cell budget is shared by its windows and views.
      const perView = Math.max(32, Math.floor(perImage / (views * windows.length)));
      for (const window of windows)
        for (const scale of [1, ...settings.scales]) {
          const pair =
            scale === 1 ? { ...t, window } : { ...scaledWindow(t.image, t.mask, window, scale), window: null };
          const view = pair.window ?? { x0: 0, y0: 0, w: pair.image.width, h: pair.image.height };
          for (const mirror of settings.mirror ? [false, true] : [false]) {
            await new Promise<void>((resolve) => setImmediate(resolve));
            check();
            const r = await viewRows(forward, pair.image, pair.mask, numClasses, perView, view, mirror, rng);
            dims = r.dims;
            parts.push(r);
          }
        }
    }
  } finally {
    await viaOnnx?.release();
  }
  const rows = parts.reduce((n, p) => n + p.rows, 0);
  if (rows === 0) throw new Error('no labelled pixels to fit the context head on');
  const xs = new Float32Array(rows * dims);
  const ys = new Float32Array(rows * numClasses);
  let r0 = 0;
  for (const p of parts) {
    xs.set(p.x, r0 * dims);
    ys.set(p.y, r0 * numClasses);
    r0 += p.rows;
  }
  const { mean, spread } = standardiseColumns(xs, rows, dims);
  // The bias starts at the log class prior of the cells.
  const prior = new Float32Array(numClasses);
  for (let r = 0; r < rows; r++) for (let c = 0; c < numClasses; c++) prior[c] += ys[r * numClasses + c];
  for (let c = 0; c < numClasses; c++) prior[c] = Math.log(prior[c] / rows + 1e-3);
  const fit = await fitSoftmaxRegression(
    { x: xs, y: ys, rows, dims, classes: numClasses, bias0: prior },
    settings,
    check,
  );
  const W = tf.tensor2d(fit.weights, [dims, numClasses]);
  const b = tf.tensor1d(fit.bias);
  const meanT = tf.tensor1d(mean);
  const std = tf.tensor1d(spread);
  try {
    // Fold the standardisation: W' = W / std, b' = b - sum(mean * W / std); split W' into the 1x1 kernels by
    // their input channels (the stride-8 read-out carries the bias).
    const folded = tf.tidy(() => {
      const scaled = tf.div(W, tf.reshape(std, [dims, 1]));
      const bias = tf.sub(b, tf.sum(tf.mul(scaled, tf.reshape(meanT, [dims, 1])), 0));
      let c0 = 0;
      const kernels = readOuts.map((l) => {
        const c = l.getWeights()[0].shape[2] as number;
        const k = tf.reshape(tf.slice(scaled, [c0, 0], [c, numClasses]), [1, 1, c, numClasses]);
        c0 += c;
        return k;
      });
      return { kernels, bias };
    });
    readOuts.forEach((l, i) => l.setWeights(i === 0 ? [folded.kernels[i], folded.bias] : [folded.kernels[i]]));
    tf.dispose([...folded.kernels, folded.bias]);
    // The decoder's bias (the cold start's lean to background) would shift the fitted read-out where the gate
    // lets the decoder count; the decoder learns its own again.
    const head = model.getLayer('head');
    const [kernel, decoderBias] = head.getWeights();
    const zero = tf.zerosLike(decoderBias);
    head.setWeights([kernel, zero]);
    zero.dispose();
  } finally {
    tf.dispose([W, b, meanT, std]);
  }
  return {
    cells: rows,
    loss: fit.loss,
    seconds: (Date.now() - start) / 1000,
    runtime: fit.runtime,
    features: viaOnnx ? 'onnxruntime' : 'tfjs',
  };
}
