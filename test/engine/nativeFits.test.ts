import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveBackend } from '../../src/engine/backends';
import { buildNetwork, networkFor } from '../../src/engine/network/networks';
import { DEFAULT_GUIDED, predictImage } from '../../src/engine/inference/tiledPredict';
import { guidedFilterProbabilities } from '../../src/engine/inference/guidedFilter';
import { guidedOnnxProblem, refineProbabilities } from '../../src/engine/inference/guidedFilterOnnx';
import {
  checkedIndices,
  suggestionsOnTraining,
  validateFrom,
  validateKeeping,
  validatePerImage,
} from '../../src/engine/training/validation';
import { syntheticSample } from '../../src/synthetic/syntheticShapes';
import { setInferenceChoice } from '../../src/engine/inference/onnxInference';
import { PIXEL_FEATURE_COUNT, pixelFeatures } from '../../src/engine/inference/pixelFeatures';
import {
  featuresOnnxProblem,
  keptFeatures,
  pixelFeaturesFast,
  type FeaturesOf,
} from '../../src/engine/inference/pixelFeaturesOnnx';
import { perturb } from './perturb';
import { applyPixelHead, headForwardRaw } from '../../src/engine/inference/pixelHead';
import { headOnnxProblem, headOnnxRunner, runPixelHead } from '../../src/engine/inference/pixelHeadOnnx';
import { fitSoftmaxRegression, standardiseColumns, transposeMatrix } from '../../src/engine/training/softmaxRegression';
import { fitPixelHead, type PixelSamples } from '../../src/engine/training/pixelHeadFit';
import { SeededRandom } from '../../src/masks/seededRandom';
import type { RgbImage } from '../../src/masks/maskImage';
import type { PixelHeadWeights } from '../../src/protocol/modelTypes';

test('columns are standardised in place: mean 0, spread 1 (a constant column gets the floor of 1e-3)', () => {
  const x = Float32Array.from([1, 10, 3, 10, 5, 10]);
  const { mean, spread } = standardiseColumns(x, 3, 2);
  assert.deepEqual(Array.from(mean), [3, 10]);
  const sd = Math.sqrt(8 / 3);
  assert.ok(Math.abs(spread[0] - (sd + 1e-3)) < 1e-6);
  assert.ok(Math.abs(spread[1] - 1e-3) < 1e-9);
  const want = [-2 / (sd + 1e-3), 0, 0, 0, 2 / (sd + 1e-3), 0];
  want.forEach((v, i) => assert.ok(Math.abs(x[i] - v) < 1e-6, `${i}: ${x[i]} vs ${v}`));
});

test('a matrix is transposed whole, its rows in blocks of any remainder', () => {
  for (const [rows, dims] of [
    [1, 1],
    [37, 5],
    [16, 3],
    [5, 40],
  ]) {
    const x = Float32Array.from({ length: rows * dims }, (_, i) => i + 0.5);
    const xt = transposeMatrix(x, rows, dims);
    assert.equal(xt.length, rows * dims);
    for (let r = 0; r < rows; r++)
      for (let j = 0; j < dims; j++) assert.equal(xt[j * rows + r], x[r * dims + j], `${rows}x${dims} at ${r},${j}`);
  }
});

test("the context head's regression through onnxruntime equals TF.js's to float rounding, and learns", async () => {
  await resolveBackend('wasm');
  const rows = 900;
  const dims = 24;
  const classes = 3;
  const rng = new SeededRandom(4);
  const x = Float32Array.from({ length: rows * dims }, () => rng.normal());
  // Soft labels that follow a linear rule of the first columns, so the fit has something to find.
  const y = new Float32Array(rows * classes);
  for (let r = 0; r < rows; r++) {
    const z = [x[r * dims], x[r * dims + 1], -x[r * dims] - x[r * dims + 1]].map((v) => Math.exp(2 * v));
    const total = z.reduce((a, b) => a + b, 0);
    z.forEach((v, c) => (y[r * classes + c] = v / total));
  }
  const problem = { x, y, rows, dims, classes, bias0: Float32Array.from([-1, -1.2, -1.1]) };
  const settings = { l2: 0.01, steps: 120, learningRate: 0.02 };
  const onnx = await fitSoftmaxRegression(problem, settings, () => undefined, 'onnxruntime');
  const tfjs = await fitSoftmaxRegression(problem, settings, () => undefined, 'tfjs');
  assert.equal(onnx.runtime, 'onnxruntime');
  assert.equal(tfjs.runtime, 'tfjs');
  let diff = 0;
  onnx.weights.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - tfjs.weights[i]))));
  onnx.bias.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - tfjs.bias[i]))));
  assert.ok(diff < 1e-4, `largest difference ${diff}`);
  assert.ok(Math.abs(onnx.loss - tfjs.loss) < 1e-5, `loss ${onnx.loss} vs ${tfjs.loss}`);
  // An uninformed read-out (the prior only) costs the entropy of the labels plus; the fit does far better.
  const start = await fitSoftmaxRegression(problem, { ...settings, steps: 0 }, () => undefined, 'onnxruntime');
  assert.ok(onnx.loss < 0.8 * start.loss, `loss ${start.loss} -> ${onnx.loss}`);
  // The weights found sit on the columns the labels follow.
  const norm = (j: number): number =>
    Math.hypot(...Array.from({ length: classes }, (_, c) => onnx.weights[j * classes + c]));
  for (let j = 2; j < dims; j++) assert.ok(norm(j) < norm(0) / 4, `column ${j}: ${norm(j)} vs ${norm(0)}`);
  // A cancel between steps stops it.
  await assert.rejects(
    fitSoftmaxRegression(problem, settings, () => {
      throw new Error('cancelled');
    }),
    /cancelled/,
  );
});

/** A head with random weights around a plausible standardisation, for `classes` classes. */
function randomHead(classes: number, seed: number): PixelHeadWeights {
  const rng = new SeededRandom(seed);
  const inputs = PIXEL_FEATURE_COUNT + classes;
  const hidden = 12;
  const values = (n: number, s: number): number[] => Array.from({ length: n }, () => rng.range(-s, s));
  return {
    features: `filters-v1-${PIXEL_FEATURE_COUNT}`,
    inputs,
    hidden,
    classes,
    mean: values(inputs, 0.5),
    scale: Array.from({ length: inputs }, () => rng.range(0.5, 3)),
    w1: values(inputs * hidden, 0.6),
    b1: values(hidden, 0.2),
    w2: values(hidden * classes, 0.8),
    b2: values(classes, 0.2),
  };
}

function noiseImage(width: number, height: number, seed: number): RgbImage {
  const rng = new SeededRandom(seed);
  return { width, height, data: Uint8Array.from({ length: width * height * 3 }, () => rng.int(0, 256)) };
}

function randomProbs(pixels: number, classes: number, seed: number): Float32Array {
  const rng = new SeededRandom(seed);
  const p = new Float32Array(pixels * classes);
  for (let i = 0; i < pixels; i++) {
    let total = 0;
    for (let c = 0; c < classes; c++) total += p[i * classes + c] = rng.range(0, 1) ** 3;
    for (let c = 0; c < classes; c++) p[i * classes + c] /= total;
  }
  return p;
}

test('the pixel head through onnxruntime gives what its JS forward gives, over several bands of rows', async () => {
  const classes = 4;
  const head = randomHead(classes, 1);
  // Taller than one band of rows (BAND_ROWS), the last one partial; not square.
  const image = noiseImage(37, 300, 2);
  const probs = randomProbs(37 * 300, classes, 3);
  const js = applyPixelHead(head, image, probs);
  const native = await runPixelHead(head, image, probs);
  assert.equal(headOnnxProblem(), '');
  assert.equal(native.length, js.length);
  let diff = 0;
  for (let i = 0; i < js.length; i++) diff = Math.max(diff, Math.abs(js[i] - native[i]));
  // Float rounding of the features' smoothings (float32 sums in onnxruntime, doubles in JS) and of the perceptron.
  assert.ok(diff < 1e-4, `largest difference ${diff}`);
  // Not a copy of the network's probabilities: the head changed them.
  let moved = 0;
  for (let i = 0; i < js.length; i++) moved = Math.max(moved, Math.abs(js[i] - probs[i]));
  assert.ok(moved > 0.1);
});

test('a head whose graph disagrees with the JS forward is not run natively, and says why; TF.js inference keeps the head in JS', async () => {
  const head = randomHead(3, 5);
  const reference = headForwardRaw(head);
  const wrong = (x: Float32Array, pixels: number): Float32Array => reference(x, pixels).map((v) => 1 - v);
  assert.equal(await headOnnxRunner(head, wrong), null);
  assert.match(headOnnxProblem(), /differs from its JS forward by .*: the head runs in JS/);
  // Still answered, through the JS forward.
  const image = noiseImage(20, 10, 6);
  const probs = randomProbs(200, 3, 7);
  assert.deepEqual(await runPixelHead(head, image, probs), applyPixelHead(head, image, probs));
  setInferenceChoice('tfjs');
  try {
    const other = randomHead(3, 8);
    assert.equal(await headOnnxRunner(other, headForwardRaw(other)), null);
    assert.deepEqual(await runPixelHead(other, image, probs), applyPixelHead(other, image, probs));
  } finally {
    setInferenceChoice('auto');
  }
});

test("the pixel head's fit through onnxruntime follows the JS fit to float rounding, and is repeatable", async () => {
  const classes = 3;
  const inputs = PIXEL_FEATURE_COUNT + classes;
  const draw = (): PixelSamples => {
    const r = new SeededRandom(12);
    const samples: PixelSamples = { xs: [], ys: [] };
    for (let i = 0; i < 2000; i++) {
      const x = Float32Array.from({ length: inputs }, () => r.normal() * 3 + 1);
      // The class follows two of the inputs, with some noise.
      const score = x[0] - x[5] + 0.5 * r.normal();
      samples.xs.push(x);
      samples.ys.push(score < -2 ? 0 : score < 2 ? 1 : 2);
    }
    return samples;
  };
  const options = { samples: 2000, hidden: 16, epochs: 6, batch: 64, learningRate: 0.01, weightDecay: 1e-4, seed: 3 };
  const js = await fitPixelHead(draw(), classes, options, undefined, 'js');
  const native = await fitPixelHead(draw(), classes, options, undefined, 'onnxruntime');
  const again = await fitPixelHead(draw(), classes, options, undefined, 'onnxruntime');
  assert.ok(js && native && again);
  assert.equal(js.runtime, 'js');
  assert.equal(native.runtime, 'onnxruntime');
  assert.deepEqual(again.head, native.head);
  assert.ok(native.loss < 0.5 * native.firstLoss, `the loss falls: ${native.firstLoss} -> ${native.loss}`);
  assert.ok(Math.abs(js.firstLoss - native.firstLoss) < 1e-5, `first epoch ${js.firstLoss} vs ${native.firstLoss}`);
  assert.ok(Math.abs(js.loss - native.loss) < 1e-4, `last epoch ${js.loss} vs ${native.loss}`);
  let diff = 0;
  native.head.w1.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - js.head.w1[i]))));
  assert.ok(diff < 1e-3, `largest difference of the first layer's weights ${diff}`);
});

test("the pixel features' smoothings through onnxruntime give the JS features, band by band, at every border", async () => {
  // Not square; bands that start inside the image and at each border; an image smaller than the kernels too.
  for (const [width, height, cuts] of [
    [61, 300, [0, 7, 140, 256, 300]],
    [9, 5, [0, 5]],
  ] as const) {
    const image = noiseImage(width, height, width + height);
    for (let b = 0; b + 1 < cuts.length; b++) {
      const js = pixelFeatures(image, cuts[b], cuts[b + 1]);
      const native = await pixelFeaturesFast(image, cuts[b], cuts[b + 1]);
      assert.equal(featuresOnnxProblem(), '');
      assert.equal(native.length, js.length);
      let diff = 0;
      js.forEach((plane, f) => {
        assert.equal(native[f].length, plane.length);
        plane.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - native[f][i]))));
      });
      assert.ok(diff < 1e-4, `${width}x${height}, band ${b}: largest difference ${diff}`);
    }
  }
});

test("the training check and the head's validation take kept network probabilities: the suggestions of predicting again", async () => {
  await resolveBackend('wasm');
  const model = await buildNetwork(networkFor('mobilenetv2', 3));
  // Non-trivial read-outs and head, so the network's suggestion is not uniform.
  perturb(model);
  const train = [1, 2, 3].map((s) => ({
    id: `${s}`,
    ...syntheticSample({ width: 120 + 8 * s, height: 72, numClasses: 3, seed: s }),
  }));
  const tiles = { stride: 16, tileSize: 256, overlap: 64, margin: 16, mirror: true, refine: true } as const;
  const network = new Map<number, Float32Array>();
  const features = new Map<number, FeaturesOf>();
  for (const i of checkedIndices(train.length)) {
    const pred = await predictImage(model, train[i].image, tiles, { keepProbabilities: true });
    network.set(i, pred.probabilities ?? new Float32Array(0));
    // The features as the head's fit computed them, in its bands of rows.
    const kept = keptFeatures();
    const planes = await kept(train[i].image, 0, train[i].image.height);
    assert.equal(await kept(train[i].image, 0, train[i].image.height), planes, 'a band is computed once');
    await assert.rejects(async () => kept(train[(i + 1) % train.length].image, 0, 8), /one image only/);
    features.set(i, kept);
  }
  // The validation keeps its probabilities within its budget; the head's validation runs on them.
  const kept = await validateKeeping(model, train, tiles, 1 << 30);
  assert.deepEqual(kept.perImage, await validatePerImage(model, train, tiles));
  const budget = await validateKeeping(model, train, tiles, (kept.probabilities[0]?.byteLength ?? 0) + 1);
  assert.deepEqual(
    budget.probabilities.map((p) => p !== null),
    [true, false, false],
    'the first fits the budget, the others are predicted again',
  );
  let withoutHead: Uint8Array | null = null;
  for (const head of [undefined, randomHead(3, 9)]) {
    const stored = { ...tiles, pixelHead: head };
    const validated = await validatePerImage(model, train, stored);
    assert.deepEqual(await validateFrom(model, train, stored, kept.probabilities), validated);
    assert.deepEqual(await validateFrom(model, train, stored, budget.probabilities), validated);
    const again = await suggestionsOnTraining(model, train, stored, () => undefined);
    const reused = await suggestionsOnTraining(model, train, stored, () => undefined, network);
    const reusedFeatures = await suggestionsOnTraining(model, train, stored, () => undefined, network, features);
    assert.equal(reused.length, train.length);
    reused.forEach((r, i) =>
      assert.deepEqual(r.suggestion.data, again[i].suggestion.data, `image ${i}, head ${head ? 'yes' : 'no'}`),
    );
    reusedFeatures.forEach((r, i) =>
      assert.deepEqual(
        r.suggestion.data,
        again[i].suggestion.data,
        `kept features: image ${i}, head ${head ? 'yes' : 'no'}`,
      ),
    );
    if (withoutHead === null) {
      withoutHead = again[0].suggestion.data;
      assert.ok(new Set(withoutHead).size > 1, "the network's suggestion is not one class everywhere");
    } else {
      const before = withoutHead;
      assert.ok(
        again[0].suggestion.data.some((v, p) => v !== before[p]),
        'the head changes the suggestion',
      );
    }
  }
  model.dispose();
});

test("the edge refinement through onnxruntime gives the JS guided filter's probabilities: sides off the blocks, tiny images, settings; large images and TF.js inference keep JS", async () => {
  const rng = new SeededRandom(31);
  const sample = (w: number, h: number, classes: number): { guide: Uint8Array; probs: Float32Array } => {
    // Colours with an edge and noise; probabilities leaning to one class on each side of it.
    const guide = Uint8Array.from({ length: w * h * 3 }, (_, i) => ((i / 3) % w < w / 3 ? 200 : 30) + rng.int(0, 50));
    const probs = new Float32Array(w * h * classes);
    for (let p = 0; p < w * h; p++) {
      let sum = 0;
      for (let k = 0; k < classes; k++)
        sum += probs[p * classes + k] = rng.next() + (k === ((p % w) * 3 < w ? 1 : 0) ? 3 : 0);
      for (let k = 0; k < classes; k++) probs[p * classes + k] /= sum;
    }
    return { guide, probs };
  };
  const settings = [DEFAULT_GUIDED, { radius: 8, eps: 0.01, subsample: 2 }, { radius: 3, eps: 0.001, subsample: 1 }];
  for (const guided of settings)
    for (const classes of [2, 11])
      for (const [w, h] of [
        [53, 37],
        [128, 96],
        [131, 70],
        [6, 3],
      ]) {
        const { guide, probs } = sample(w, h, classes);
        const js = guidedFilterProbabilities(guide, probs, h, w, classes, guided, 1 / 255, 0);
        const native = await refineProbabilities(guide, probs, h, w, classes, guided, 1 / 255, 0);
        assert.equal(guidedOnnxProblem(), '', 'the graph passed its check');
        let diff = 0;
        js.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - native[i]))));
        assert.ok(diff < 1e-4, `${w}x${h}, ${classes} classes, ${JSON.stringify(guided)}: largest difference ${diff}`);
      }
  const large = sample(1025, 1024, 2);
  assert.deepEqual(
    await refineProbabilities(large.guide, large.probs, 1024, 1025, 2, DEFAULT_GUIDED, 1 / 255, 0),
    guidedFilterProbabilities(large.guide, large.probs, 1024, 1025, 2, DEFAULT_GUIDED, 1 / 255, 0),
    'over GUIDED_ONNX_MAX_PIXELS, the JS filter',
  );
  const small = sample(53, 37, 2);
  setInferenceChoice('tfjs');
  try {
    assert.deepEqual(
      await refineProbabilities(small.guide, small.probs, 37, 53, 2, DEFAULT_GUIDED, 1 / 255, 0),
      guidedFilterProbabilities(small.guide, small.probs, 37, 53, 2, DEFAULT_GUIDED, 1 / 255, 0),
      'TF.js inference: the JS filter',
    );
  } finally {
    setInferenceChoice('auto');
  }
});

test('kept pixel features are those of each band of rows, computed once', async () => {
  const { image } = syntheticSample({ width: 40, height: 300, numClasses: 3, seed: 8 });
  const kept = keptFeatures();
  for (const [y0, y1] of [
    [0, 256],
    [256, 300],
  ]) {
    const planes = await kept(image, y0, y1);
    assert.deepEqual(planes, await pixelFeaturesFast(image, y0, y1), `rows ${y0}-${y1}`);
    assert.equal(await kept(image, y0, y1), planes, `rows ${y0}-${y1} again: the kept planes`);
  }
  assert.notDeepEqual(await kept(image, 0, 256), await kept(image, 256, 300));
});
