import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { resolveBackend } from '../../src/engine/backends';
import { CONTEXT_LAYERS, hasContextHead } from '../../src/engine/network/contextHead';
import { contextFitFor, DEFAULT_CONTEXT_FIT, fitContextHead } from '../../src/engine/training/contextHeadFit';
import { BilinearUpsample, upsampleBilinear } from '../../src/engine/network/bilinearUpsample';
import { coveringWindows, scaledWindow } from '../../src/engine/network/contextWindows';
import { DEFAULT_FINE_TUNE, fineTune } from '../../src/engine/training/fineTune';
import { validate } from '../../src/engine/training/validation';
import { buildNetwork, networkFor } from '../../src/engine/network/networks';
import { networkStride } from '../../src/engine/network/resUNet';
import { predictImage } from '../../src/engine/inference/tiledPredict';
import { SeededRandom } from '../../src/masks/seededRandom';
import { setInferenceChoice } from '../../src/engine/inference/onnxInference';
import { learningSamples } from './learningData';

/** The context head's read-out weights, flattened. */
function headWeights(m: tfl.LayersModel): Float32Array {
  return Float32Array.from(
    [CONTEXT_LAYERS.s8, CONTEXT_LAYERS.s16, CONTEXT_LAYERS.s16b].flatMap((n) =>
      m
        .getLayer(n)
        .getWeights()
        .flatMap((w) => Array.from(w.dataSync())),
    ),
  );
}

/** The largest absolute difference between two weight vectors, and the largest weight of the second. */
function largestDifference(a: Float32Array, b: Float32Array): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { diff, scale };
}

test('bilinear upsampling has half-pixel centres, clamped at the border, and the layer survives serialisation', async () => {
  await resolveBackend('auto');
  // One row [0, 8]: output pixel centres at source -0.25, 0.25, 0.75, 1.25.
  const up = upsampleBilinear(tf.tensor4d([0, 8], [1, 1, 2, 1]), 2);
  assert.deepEqual(Array.from(up.dataSync()).slice(0, 4), [0, 2, 6, 8]);
  // A constant map stays constant to the border (zero padding would shrink it there).
  const flat = upsampleBilinear(tf.fill([1, 3, 5, 2], 1.5) as tf.Tensor4D, 8);
  assert.deepEqual(flat.shape, [1, 24, 40, 2]);
  assert.ok(Array.from(flat.dataSync()).every((v) => Math.abs(v - 1.5) < 1e-6));
  const input = tfl.input({ shape: [null, null, 2] });
  const model = tfl.model({
    inputs: input,
    outputs: new BilinearUpsample({ factor: 4, name: 'up' }).apply(input) as tfl.SymbolicTensor,
  });
  const copy = await tfl.models.modelFromJSON({
    modelTopology: model.toJSON(null, false) as object,
  } as tf.io.ModelJSON);
  const x = tf.randomUniform([1, 3, 4, 2], -1, 1, 'float32', 1);
  const d = tf.max(tf.abs(tf.sub(copy.predict(x) as tf.Tensor, upsampleBilinear(x as tf.Tensor4D, 4)))).dataSync()[0];
  assert.equal(d, 0);
  tf.dispose([up, flat, x]);
});

test('the context head, fitted on whole images alone, turns an empty suggestion into one that needs few corrections; same seed, same weights', async () => {
  await resolveBackend('auto');
  const config = networkFor('mobilenetv2', 2);
  assert.ok(config.contextHead, 'new pretrained-encoder networks have the context head');
  const model = await buildNetwork(config);
  assert.ok(hasContextHead(model));
  const train = learningSamples(100, 6);
  const val = learningSamples(200, 4);
  const tiles = { stride: networkStride(config), tileSize: 512, overlap: 128, margin: 32 };
  const before = await validate(model, val, tiles);
  const fit = await fitContextHead(model, train);
  const after = await validate(model, val, tiles);
  assert.ok(before && after);
  process.stdout.write(
    `# context head alone (decoder untouched): pixels to correct ${before.changedFraction.toFixed(3)} -> ${after.changedFraction.toFixed(3)}, mIoU ${before.miou.toFixed(3)} -> ${after.miou.toFixed(3)}; ${fit.cells} cells, loss ${fit.loss.toFixed(3)}, ${fit.seconds.toFixed(1)} s\n`,
  );
  assert.deepEqual(DEFAULT_CONTEXT_FIT.scales, [0.75, 1.5]);
  assert.equal(
    fit.cells,
    2 * 6 * ((96 / 8) ** 2 + (72 / 8) ** 2 + (144 / 8) ** 2),
    'every 8x8 cell of the six 96x96 images, of them at 72x72 and 144x144, and of their mirror images',
  );
  assert.ok(
    after.changedFraction < before.changedFraction / 2,
    `pixels to correct ${before.changedFraction} -> ${after.changedFraction}`,
  );
  const weights = (m: tfl.LayersModel): Float32Array[] =>
    [CONTEXT_LAYERS.s8, CONTEXT_LAYERS.s16, CONTEXT_LAYERS.s16b].flatMap((n) =>
      m
        .getLayer(n)
        .getWeights()
        .map((w) => w.dataSync() as Float32Array),
    );
  const first = weights(model);
  await fitContextHead(model, train);
  weights(model).forEach((w, i) =>
    assert.deepEqual(w, first[i], 'a second fit with the same seed gives the same weights'),
  );
  // Cancelling between images stops the fit.
  await assert.rejects(
    fitContextHead(model, train, DEFAULT_CONTEXT_FIT, () => {
      throw new Error('cancelled');
    }),
    /cancelled/,
  );
  model.dispose();
});

test('the decoder counts where the context head is unsure: its logits are gated by the square of 2 (1 - sum p^2)', async () => {
  await resolveBackend('auto');
  const model = await buildNetwork(networkFor('mobilenetv2', 3));
  // Give the read-outs non-trivial weights so the gate spans sure and unsure pixels.
  for (const name of [CONTEXT_LAYERS.s8, CONTEXT_LAYERS.s16, CONTEXT_LAYERS.s16b]) {
    const layer = model.getLayer(name);
    layer.setWeights(layer.getWeights().map((w, i) => tf.randomUniform(w.shape, -0.5, 0.5, 'float32', 10 + i)));
  }
  const probe = tfl.model({
    inputs: model.inputs,
    outputs: [CONTEXT_LAYERS.probs, CONTEXT_LAYERS.gateSquared].map(
      (n) => model.getLayer(n).output as tfl.SymbolicTensor,
    ),
  });
  const x = tf.randomUniform([1, 64, 64, 3], -1, 1, 'float32', 4);
  const [p, g2] = probe.predict(x) as tf.Tensor[];
  const expected = tf.tidy(() => tf.square(tf.mul(2, tf.sub(1, tf.sum(tf.square(p), -1, true)))));
  const d = tf.max(tf.abs(tf.sub(g2, expected))).dataSync()[0];
  assert.ok(d < 1e-5, `gate differs by ${d}`);
  const values = g2.dataSync();
  assert.ok(
    Math.min(...values) < 0.5 && Math.max(...values) > 0.9,
    `the gate spans sure and unsure pixels: ${Math.min(...values)}-${Math.max(...values)}`,
  );
  tf.dispose([x, p, g2, expected]);
  model.dispose();
});

test('0 epochs is the fast fine-tune: the context head is fitted and validated, the decoder is left as it was; a network without a context head refuses it', async () => {
  await resolveBackend('auto');
  const config = networkFor('mobilenetv2', 2);
  const model = await buildNetwork(config);
  const tiles = { stride: networkStride(config), tileSize: 512, overlap: 128, margin: 32 };
  const decoder = (): Map<string, Float32Array> =>
    new Map(
      model.layers
        .filter((l) => /^dec|^stem/.test(l.name))
        .flatMap((l) => l.getWeights().map((w, i) => [`${l.name}/${i}`, w.dataSync() as Float32Array] as const)),
    );
  const before = decoder();
  const result = await fineTune(
    model,
    learningSamples(100, 6),
    learningSamples(200, 3),
    { ...DEFAULT_FINE_TUNE, epochs: 0 },
    tiles,
  );
  assert.equal(result.steps, 0);
  assert.ok(result.context, 'the context head was fitted');
  assert.equal(
    result.context.cells,
    2 * 6 * ((96 / 8) ** 2 + (72 / 8) ** 2 + (144 / 8) ** 2),
    'with the resized views, mirrored too',
  );
  // The resized views only when the head is the whole fine-tune; under a training decoder, the image and its mirror.
  assert.deepEqual(contextFitFor(0, 3), { ...DEFAULT_CONTEXT_FIT, seed: 3 });
  assert.deepEqual(contextFitFor(DEFAULT_FINE_TUNE.epochs, 3), { ...DEFAULT_CONTEXT_FIT, scales: [], seed: 3 });
  assert.ok(result.metricsBefore && result.metricsAfter, 'validated before and after');
  assert.ok(
    result.metricsAfter.changedFraction < result.metricsBefore.changedFraction / 2,
    `pixels to correct ${result.metricsBefore.changedFraction} -> ${result.metricsAfter.changedFraction}`,
  );
  assert.equal(result.perImageAfter.length, 3);
  assert.deepEqual(result.priorCorrection, [0, 0], 'no crops, so no crop prior to correct');
  const after = decoder();
  assert.ok(before.size > 10);
  for (const [name, w] of before) assert.deepEqual(after.get(name), w, `${name} unchanged`);
  model.dispose();
  const scratch = await buildNetwork(networkFor('scratch', 2));
  await assert.rejects(
    fineTune(scratch, learningSamples(100, 2), [], { ...DEFAULT_FINE_TUNE, epochs: 0 }, { ...tiles, stride: 16 }),
    /0 epochs fits only the context head/,
  );
  scratch.dispose();
});

test("the context head's mirrored cells carry their own labels: fitting an image with its mirror equals fitting both unmirrored", async () => {
  await resolveBackend('auto');
  const model = await buildNetwork(networkFor('mobilenetv2', 2));
  // 90 px wide: padded to 96 on the right, the mirrored view too (the padding is not mirrored with the image).
  const crop = <T extends { width: number; height: number; data: Uint8Array }>(
    im: T,
    channels: number,
    mirror: boolean,
  ): T => {
    const w = 90;
    const data = new Uint8Array(w * im.height * channels);
    for (let y = 0; y < im.height; y++)
      for (let x = 0; x < w; x++)
        data.set(
          im.data.subarray((y * im.width + x) * channels, (y * im.width + x + 1) * channels),
          (y * w + (mirror ? w - 1 - x : x)) * channels,
        );
    return { ...im, width: w, data };
  };
  const samples = learningSamples(300, 2);
  const plain = samples.map((s) => ({ image: crop(s.image, 3, false), mask: crop(s.mask, 1, false) }));
  const both = [...plain, ...samples.map((s) => ({ image: crop(s.image, 3, true), mask: crop(s.mask, 1, true) }))];
  const mirroredFit = await fitContextHead(model, plain, { ...DEFAULT_CONTEXT_FIT, mirror: true, scales: [] });
  const a = headWeights(model);
  const bothFit = await fitContextHead(model, both, { ...DEFAULT_CONTEXT_FIT, mirror: false, scales: [] });
  const b = headWeights(model);
  assert.equal(mirroredFit.cells, bothFit.cells);
  // Mislabelled mirrored cells (labels not mirrored, or the padding counted) would give a different fit; here
  // only the rows' order and so float rounding differ.
  const { diff, scale } = largestDifference(a, b);
  assert.ok(diff < 1e-3 * scale, `largest weight difference ${diff} (largest weight ${scale})`);
  const unmirroredLabels = await fitContextHead(
    model,
    [...plain, ...samples.map((s) => ({ image: crop(s.image, 3, true), mask: crop(s.mask, 1, false) }))],
    { ...DEFAULT_CONTEXT_FIT, mirror: false, scales: [] },
  );
  assert.equal(unmirroredLabels.cells, bothFit.cells);
  const c = headWeights(model);
  const wrong = largestDifference(c, b).diff;
  assert.ok(wrong > 100 * diff, `wrong labels change the fit (${wrong}), far more than row order does (${diff})`);
  model.dispose();
});

test("a resized window: the image bilinear with half-pixel centres, the mask nearest, from the window's own pixels", () => {
  // One row of four pixels, grey levels 0, 40, 80, 120 (all three channels), labels 1, 1, 2, 255; the window
  // is its last three pixels.
  const image = { width: 4, height: 1, data: Uint8Array.from([0, 40, 80, 120].flatMap((v) => [v, v, v])) };
  const mask = { width: 4, height: 1, data: Uint8Array.from([1, 1, 2, 255]) };
  const up = scaledWindow(image, mask, { x0: 1, y0: 0, w: 3, h: 1 }, 2);
  assert.deepEqual([up.image.width, up.image.height], [6, 2]);
  // Output centres at source -0.25 (clamped to 0), 0.25, 0.75, 1.25, 1.75, 2.25 (clamped to 2) of 40, 80, 120;
  // both rows are copies of the one source row.
  const grey = [40, 50, 70, 90, 110, 120];
  assert.deepEqual(Array.from(up.image.data.filter((_, i) => i % 3 === 0)), [...grey, ...grey]);
  assert.deepEqual(Array.from(up.mask.data), [1, 1, 2, 2, 255, 255, 1, 1, 2, 2, 255, 255]);
  const down = scaledWindow(image, mask, { x0: 0, y0: 0, w: 4, h: 1 }, 0.5);
  assert.deepEqual([down.image.width, down.image.height], [2, 1]);
  // Centres at source 0.5 and 2.5: the means of the pairs; labels of the pixels the centres fall in.
  assert.deepEqual(Array.from(down.image.data.filter((_, i) => i % 3 === 0)), [20, 100]);
  assert.deepEqual(Array.from(down.mask.data), [1, 255]);
});

test("the context head's resized views carry their own labels: fitting with scales equals fitting the resized images as images", async () => {
  await resolveBackend('auto');
  const model = await buildNetwork(networkFor('mobilenetv2', 2));
  const plain = learningSamples(400, 2);
  const whole = (s: (typeof plain)[number]) => ({ x0: 0, y0: 0, w: s.image.width, h: s.image.height });
  const scales = [0.75, 1.5];
  const scaledFit = await fitContextHead(model, plain, { ...DEFAULT_CONTEXT_FIT, mirror: false, scales });
  const a = headWeights(model);
  const explicit = [...plain, ...scales.flatMap((f) => plain.map((s) => scaledWindow(s.image, s.mask, whole(s), f)))];
  const explicitFit = await fitContextHead(model, explicit, { ...DEFAULT_CONTEXT_FIT, mirror: false, scales: [] });
  const b = headWeights(model);
  assert.equal(scaledFit.cells, explicitFit.cells);
  assert.equal(scaledFit.cells, 2 * ((96 / 8) ** 2 + (72 / 8) ** 2 + (144 / 8) ** 2));
  const { diff, scale } = largestDifference(a, b);
  assert.ok(diff < 1e-3 * scale, `largest weight difference ${diff} (largest weight ${scale})`);
  // The resized images with their masks mirrored (labels that do not match the pixels) fit otherwise.
  const mirrored = (m: { width: number; height: number; data: Uint8Array }) => ({
    ...m,
    data: Uint8Array.from(m.data, (_, i) => m.data[i - (i % m.width) + m.width - 1 - (i % m.width)]),
  });
  const misplaced = [
    ...plain,
    ...explicit.slice(plain.length).map((s) => ({ image: s.image, mask: mirrored(s.mask) })),
  ];
  await fitContextHead(model, misplaced, { ...DEFAULT_CONTEXT_FIT, mirror: false, scales: [] });
  const c = headWeights(model);
  const wrong = largestDifference(c, b).diff;
  assert.ok(wrong > 100 * diff, `wrong labels change the fit (${wrong}), far more than row order does (${diff})`);
  model.dispose();
});

test('covering windows: one for an image that fits, else a grid that reaches every pixel, the last flush with the far edges', () => {
  assert.deepEqual(coveringWindows(300, 200, 512), [{ x0: 0, y0: 0, w: 300, h: 200 }]);
  for (const [w, h, size] of [
    [1000, 563, 512],
    [3068, 700, 1024],
    [2048, 1024, 1024],
    [513, 97, 96],
  ]) {
    const windows = coveringWindows(w, h, size);
    const covered = new Uint8Array(w * h);
    for (const win of windows) {
      assert.ok(
        win.x0 >= 0 && win.y0 >= 0 && win.x0 + win.w <= w && win.y0 + win.h <= h,
        `window inside the ${w}x${h} image`,
      );
      assert.deepEqual([win.w, win.h], [Math.min(w, size), Math.min(h, size)]);
      for (let y = win.y0; y < win.y0 + win.h; y++) covered.fill(1, y * w + win.x0, y * w + win.x0 + win.w);
    }
    assert.equal(covered.indexOf(0), -1, `every pixel of ${w}x${h} covered by windows of ${size}`);
    assert.equal(windows.length, Math.ceil(w / size) * Math.ceil(h / size), 'no more windows than needed');
  }
});

test('the context head learns small objects at every border of a non-square image larger than its window', async () => {
  await resolveBackend('auto');
  // A 320x192 grey-noise image with a 24x24 square touching each of its four borders (each 0.9% of the
  // pixels), fitted through 128-pixel windows: one window could not hold all four, and missed most of them.
  const [W, H] = [320, 192];
  const rng = new SeededRandom(5);
  const data = new Uint8Array(W * H * 3);
  const labels = new Uint8Array(W * H);
  for (let i = 0; i < W * H; i++) {
    const g = 110 + rng.int(0, 40);
    data.set([g, g, g], i * 3);
  }
  // Each square has its own colour, so seeing one does not teach the others.
  const squares = [
    { x: 0, y: 80, rgb: [220, 40, 40] },
    { x: W - 24, y: 30, rgb: [40, 200, 40] },
    { x: 200, y: 0, rgb: [40, 40, 220] },
    { x: 60, y: H - 24, rgb: [230, 220, 30] },
  ];
  for (const q of squares) {
    for (let y = q.y; y < q.y + 24; y++) {
      for (let x = q.x; x < q.x + 24; x++) {
        data.set(
          q.rgb.map((v) => v - 20 + rng.int(0, 25)),
          (y * W + x) * 3,
        );
        labels[y * W + x] = 1;
      }
    }
  }
  const sample = { image: { width: W, height: H, data }, mask: { width: W, height: H, data: labels } };
  const config = networkFor('mobilenetv2', 2);
  const model = await buildNetwork(config);
  const settings = { ...DEFAULT_CONTEXT_FIT, window: 128, mirror: false, scales: [] };
  const fit = await fitContextHead(model, [sample], settings);
  assert.equal(fit.cells, 6 * (128 / 8) ** 2, "the 3 x 2 windows' cells (the budget is larger than the image)");
  const pred = await predictImage(model, sample.image, {
    stride: networkStride(config),
    tileSize: 512,
    overlap: 128,
    margin: 32,
    mirror: false,
    refine: false,
  });
  for (const q of squares) {
    let hit = 0;
    for (let y = q.y; y < q.y + 24; y++) for (let x = q.x; x < q.x + 24; x++) hit += pred.classMap[y * W + x];
    assert.ok(hit > 0.5 * 24 * 24, `the square at (${q.x}, ${q.y}) is found: ${hit} of ${24 * 24} pixels`);
  }
  let false1 = 0;
  for (let i = 0; i < W * H; i++) if (!labels[i] && pred.classMap[i]) false1++;
  assert.ok(false1 < 0.03 * W * H, `background painted as object: ${false1} pixels`);
  model.dispose();
});

test("the context head's encoder passes through onnxruntime give the fit TF.js's give", async () => {
  await resolveBackend('wasm');
  const model = await buildNetwork(networkFor('mobilenetv2', 3));
  const train = learningSamples(300, 3);
  const settings = { ...DEFAULT_CONTEXT_FIT, scales: [] };
  const read = (): Float32Array[] =>
    [CONTEXT_LAYERS.s8, CONTEXT_LAYERS.s16, CONTEXT_LAYERS.s16b].flatMap((n) =>
      model
        .getLayer(n)
        .getWeights()
        .map((w) => w.dataSync().slice() as Float32Array),
    );
  const viaOnnx = await fitContextHead(model, train, settings);
  const a = read();
  setInferenceChoice('tfjs');
  try {
    const viaTf = await fitContextHead(model, train, settings);
    assert.equal(viaOnnx.features, 'onnxruntime');
    assert.equal(viaTf.features, 'tfjs');
    assert.equal(viaOnnx.cells, viaTf.cells);
    assert.ok(Math.abs(viaOnnx.loss - viaTf.loss) < 1e-3, `loss ${viaOnnx.loss} against ${viaTf.loss}`);
    read().forEach((w, i) => {
      let scale = 1e-6;
      let diff = 0;
      for (let j = 0; j < w.length; j++) {
        scale = Math.max(scale, Math.abs(w[j]));
        diff = Math.max(diff, Math.abs(w[j] - a[i][j]));
      }
      assert.ok(diff < 1e-2 * scale, `read-out weights differ by ${diff} of ${scale}`);
    });
  } finally {
    setInferenceChoice('auto');
    model.dispose();
  }
});
