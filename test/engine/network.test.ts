import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { resolveBackend } from '../../src/engine/backends';
import {
  buildResUNet,
  countParameters,
  DEFAULT_NETWORK,
  estimateFlops,
  networkStride,
} from '../../src/engine/network/resUNet';
import {
  AUTO_MAX_PIXELS,
  DEFAULT_GUIDED,
  DEFAULT_TILES,
  defaultRefine,
  mirrorColumns,
  mirrorsImage,
  predictImage,
  refinesImage,
  tileOrigins,
} from '../../src/engine/inference/tiledPredict';
import { guidedFilterProbabilities } from '../../src/engine/inference/guidedFilter';
import { normalizePixel } from '../../src/engine/network/networkInput';
import { SeededRandom } from '../../src/masks/seededRandom';

test('the residual U-Net has an identity or projection add in every block; the plain variant has none', async () => {
  await resolveBackend('wasm');
  const res = buildResUNet({ ...DEFAULT_NETWORK, numClasses: 3 });
  const plain = buildResUNet({ ...DEFAULT_NETWORK, numClasses: 3, residual: false });
  const adds = res.layers.filter((l) => l.getClassName() === 'Add');
  const blocks =
    1 + DEFAULT_NETWORK.stageWidths.length * DEFAULT_NETWORK.blocksPerStage + DEFAULT_NETWORK.stageWidths.length;
  assert.equal(adds.length, blocks);
  for (const add of adds) {
    // y = F(x) + x: one input is the block's second batch norm, the other its input or projection.
    const inputs = (add.input as { sourceLayer: { name: string } }[]).map((t) => t.sourceLayer.name);
    assert.ok(
      inputs.some((n) => n.endsWith('_bn2')),
      `${add.name} adds ${inputs}`,
    );
  }
  assert.ok(
    res.layers.some((l) => l.name === 'enc1_b1_proj'),
    'stride-2 blocks project the shortcut with a 1x1 conv',
  );
  assert.equal(plain.layers.filter((l) => l.getClassName() === 'Add').length, 0);
  // Same layer widths: the plain net lacks only the projection convolutions and their batch norms.
  const convWidths = (m: typeof res): number[] =>
    m.layers
      .filter((l) => l.getClassName() === 'Conv2D' && !l.name.includes('proj'))
      .map((l) => (l.getConfig() as { filters: number }).filters);
  assert.deepEqual(convWidths(plain), convWidths(res));
  assert.equal(
    res.layers.filter((l) => l.getClassName() === 'UpSampling2D').length,
    DEFAULT_NETWORK.stageWidths.length,
  );
  assert.equal(res.outputs[0].shape[3], 3);
  const { total } = countParameters(res);
  assert.ok(total > 100_000 && total < 2_000_000, `${total} parameters`);
  assert.ok(estimateFlops(res, 512, 512) > 1e9);
  res.dispose();
  plain.dispose();
});

test('any input size: odd sizes come back at their own size, probabilities sum to 1', async () => {
  await resolveBackend('wasm');
  const net = { ...DEFAULT_NETWORK, numClasses: 2, stageWidths: [8, 16, 32] };
  const model = buildResUNet(net);
  const rng = new SeededRandom(3);
  for (const [w, h] of [
    [37, 53],
    [1, 1],
    [17, 16],
    [70, 9],
  ]) {
    const data = new Uint8Array(w * h * 3).map(() => rng.int(0, 256));
    const p = await predictImage(
      model,
      { width: w, height: h, data },
      { stride: networkStride(net), tileSize: 64, overlap: 32, margin: 8 },
    );
    assert.equal(p.width, w);
    assert.equal(p.height, h);
    assert.equal(p.classMap.length, w * h);
    assert.ok(
      p.confidence.every((c) => c >= 127),
      'the chosen class has probability >= 0.5 of 2',
    );
  }
  const probs = model.predict(tf.zeros([1, 16, 24, 3])) as tf.Tensor;
  assert.deepEqual(probs.shape, [1, 16, 24, 2]);
  const sums = await tf.sum(probs, -1).data();
  assert.ok(sums.every((s) => Math.abs(s - 1) < 1e-5));
  model.dispose();
});

test('tiled prediction equals whole-image prediction away from tile edges, and tiles cover everything', async () => {
  await resolveBackend('wasm');
  assert.deepEqual(tileOrigins(100, 64, 32, 8), [0, 32]);
  assert.deepEqual(tileOrigins(64, 64, 32, 8), [0]);
  // A small net (receptive radius about 18 px) so a margin of 24 px covers its whole context.
  const net = { ...DEFAULT_NETWORK, numClasses: 3, stageWidths: [8, 16], seed: 5 };
  const model = buildResUNet(net);
  // Make the untrained net's output vary: random BN statistics.
  model.setWeights(
    model
      .getWeights()
      .map((w, i) =>
        w.shape.length === 1 && w.shape[0] !== 3 ? tf.add(w, tf.randomUniform(w.shape, 0, 0.5, 'float32', i)) : w,
      ),
  );
  const rng = new SeededRandom(11);
  const W = 150;
  const H = 110;
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      for (let c = 0; c < 3; c++)
        data[(y * W + x) * 3 + c] = Math.max(
          0,
          Math.min(255, 128 + 90 * Math.sin(x / 7 + c) * Math.cos(y / 11) + rng.int(-30, 30)),
        );
  const image = { width: W, height: H, data };
  const stride = networkStride(net);
  const whole = await predictImage(model, image, { stride, tileSize: 256, overlap: 64, margin: 16 });
  let tiles = 0;
  const tiled = await predictImage(
    model,
    image,
    { stride, tileSize: 96, overlap: 48, margin: 24 },
    {
      onTile: (_d, total) => {
        tiles = total;
      },
    },
  );
  assert.ok(tiles >= 4, `${tiles} tiles`);
  let differ = 0;
  let confDiff = 0;
  for (let i = 0; i < W * H; i++) {
    if (whole.classMap[i] !== tiled.classMap[i]) differ++;
    confDiff = Math.max(confDiff, Math.abs(whole.confidence[i] - tiled.confidence[i]));
  }
  assert.ok(new Set(whole.classMap).size > 1, 'the test image must produce more than one class');
  assert.equal(differ, 0, `${differ} pixels differ between tiled and whole-image prediction`);
  assert.ok(confDiff <= 1, `confidence differs by ${confDiff}/255`);
  model.dispose();
});

test('mirror averaging: the suggestion for a mirrored image is the mirror of the suggestion, which a single pass is not', async () => {
  await resolveBackend('wasm');
  assert.deepEqual(
    Array.from(mirrorColumns(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), 2, 3, 2)),
    [5, 6, 3, 4, 1, 2, 11, 12, 9, 10, 7, 8],
  );
  const net = { ...DEFAULT_NETWORK, numClasses: 3, stageWidths: [8, 16], seed: 5 };
  const model = buildResUNet(net);
  model.setWeights(
    model
      .getWeights()
      .map((w, i) =>
        w.shape.length === 1 && w.shape[0] !== 3 ? tf.add(w, tf.randomUniform(w.shape, 0, 0.5, 'float32', i)) : w,
      ),
  );
  const stride = networkStride(net);
  const rng = new SeededRandom(12);
  // Sides on the stride: no padding, so a mirrored image is exactly the mirrored input.
  const W = stride * 36;
  const H = stride * 28;
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      for (let c = 0; c < 3; c++)
        data[(y * W + x) * 3 + c] = Math.max(
          0,
          Math.min(255, 128 + 90 * Math.sin(x / 7 + c) * Math.cos(y / 11) + rng.int(-30, 30)),
        );
  const image = { width: W, height: H, data };
  const mirroredData = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      mirroredData.set(data.subarray((y * W + x) * 3, (y * W + x) * 3 + 3), (y * W + W - 1 - x) * 3);
  const mirrored = { width: W, height: H, data: mirroredData };
  const asymmetry = async (mirror: boolean): Promise<{ differ: number; classes: number }> => {
    const tiles = { stride, tileSize: 512, overlap: 128, margin: 32, mirror };
    const a = await predictImage(model, image, tiles);
    const b = await predictImage(model, mirrored, tiles);
    let differ = 0;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) if (a.classMap[y * W + x] !== b.classMap[y * W + W - 1 - x]) differ++;
    return { differ, classes: new Set(a.classMap).size };
  };
  const single = await asymmetry(false);
  const averaged = await asymmetry(true);
  assert.ok(single.classes > 1 && averaged.classes > 1, 'the test image must produce more than one class');
  assert.ok(
    single.differ > 0,
    'a single pass of this untrained net is not mirror-symmetric (else this test could not fail)',
  );
  assert.equal(averaged.differ, 0, `${averaged.differ} pixels break the mirror symmetry`);
  // 'auto' (the default) mirrors images up to 2048 x 2048 pixels, so a very large one keeps its single-pass time.
  assert.equal(AUTO_MAX_PIXELS, 2048 * 2048);
  assert.ok(mirrorsImage({ mirror: 'auto' }, 2048, 2048) && !mirrorsImage({ mirror: 'auto' }, 4096, 4096));
  assert.ok(
    mirrorsImage({ mirror: true }, 4096, 4096) &&
      !mirrorsImage({ mirror: false }, 256, 256) &&
      !mirrorsImage({}, 256, 256),
  );
  const auto = await predictImage(model, mirrored, { stride, tileSize: 512, overlap: 128, margin: 32, mirror: 'auto' });
  const always = await predictImage(model, mirrored, { stride, tileSize: 512, overlap: 128, margin: 32, mirror: true });
  assert.deepEqual(auto.classMap, always.classMap);
  model.dispose();
});

test("edge refinement: the suggestion is the argmax of the guided filter over the network's probabilities, guided by the image", async () => {
  await resolveBackend('wasm');
  // A coarse network, as a read-out at stride 8 is: 8x8 average pooling, a 1x1 softmax, bilinear upsampling.
  const input = tfl.input({ shape: [null, null, 3] });
  const pooled = tfl.layers.averagePooling2d({ poolSize: 8, strides: 8 }).apply(input) as tfl.SymbolicTensor;
  const logits = tfl.layers
    .conv2d({
      filters: 3,
      kernelSize: 1,
      activation: 'softmax',
      kernelInitializer: tfl.initializers.randomNormal({ stddev: 3, seed: 6 }),
    })
    .apply(pooled) as tfl.SymbolicTensor;
  const model = tfl.model({
    inputs: input,
    outputs: tfl.layers.upSampling2d({ size: [8, 8], interpolation: 'bilinear' }).apply(logits) as tfl.SymbolicTensor,
  });
  const stride = 8;
  const W = stride * 24;
  const H = stride * 16;
  // Flat colour regions (a disc and a bar on a background) with noise: edges for the filter to follow.
  const rng = new SeededRandom(4);
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const colour =
        (x - 70) ** 2 + (y - 80) ** 2 < 40 ** 2 ? [200, 60, 40] : x > 140 && y < 60 ? [40, 90, 210] : [90, 150, 80];
      for (let c = 0; c < 3; c++) data[(y * W + x) * 3 + c] = Math.max(0, Math.min(255, colour[c] + rng.int(-20, 20)));
    }
  }
  const image = { width: W, height: H, data };
  const probs = tf.tidy(
    () => model.predict(tf.tensor4d(Float32Array.from(data, normalizePixel), [1, H, W, 3])) as tf.Tensor4D,
  );
  const p = (await probs.data()) as Float32Array;
  probs.dispose();
  const refined = guidedFilterProbabilities(data, p, H, W, 3, DEFAULT_GUIDED, 1 / 255, 0);
  const argmax = (q: Float32Array, i: number): number =>
    q[i * 3 + 1] > q[i * 3] ? (q[i * 3 + 2] > q[i * 3 + 1] ? 2 : 1) : q[i * 3 + 2] > q[i * 3] ? 2 : 0;
  const tiles = { stride, tileSize: 512, overlap: 128, margin: 32, mirror: false };
  const plain = await predictImage(model, image, tiles);
  const withFilter = await predictImage(model, image, { ...tiles, refine: true });
  let agree = 0;
  let changed = 0;
  let plainAgree = 0;
  for (let i = 0; i < W * H; i++) {
    if (withFilter.classMap[i] === argmax(refined, i)) agree++;
    if (plain.classMap[i] === argmax(p, i)) plainAgree++;
    if (argmax(refined, i) !== argmax(p, i)) changed++;
  }
  // The runtime (onnxruntime when installed) rounds differently from TF.js: near-ties may flip.
  assert.ok(plainAgree >= 0.995 * W * H, `unrefined: ${plainAgree} of ${W * H} pixels as TF.js`);
  assert.ok(agree >= 0.995 * W * H, `refined: ${agree} of ${W * H} pixels as the filter over TF.js's probabilities`);
  assert.ok(changed > 0.01 * W * H, `the filter changes ${changed} pixels (else this test could not fail)`);
  assert.ok(withFilter.classMap.some((v, i) => v !== plain.classMap[i]));
  // 'auto' (the default) refines images up to 2048 x 2048 pixels, as the mirror averaging.
  assert.equal(DEFAULT_TILES.refine, 'auto');
  assert.ok(refinesImage({ refine: 'auto' }, 2048, 2048) && !refinesImage({ refine: 'auto' }, 4096, 4096));
  assert.ok(
    refinesImage({ refine: true }, 4096, 4096) &&
      !refinesImage({ refine: false }, 256, 256) &&
      !refinesImage({}, 256, 256),
  );
  // By default under a pretrained encoder only.
  assert.deepEqual(
    [defaultRefine('mobilenetv2'), defaultRefine('distilled-resnet'), defaultRefine('scratch')],
    ['auto', 'auto', false],
  );
  model.dispose();
});
