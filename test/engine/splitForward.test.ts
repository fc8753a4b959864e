import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { resolveBackend } from '../../src/engine/backends';
import { disposeGraph, foldGraph } from '../../src/engine/inference/foldedGraph';
import { releaseOnnx, setInferenceChoice } from '../../src/engine/inference/onnxInference';
import { EncoderCache, splitGraph, splitWindowForward } from '../../src/engine/inference/splitForward';
import { predictImage, type TileOptions } from '../../src/engine/inference/tiledPredict';
import { buildNetwork, networkFor } from '../../src/engine/network/networks';
import { encoderLayerNames, encoderOutputNames } from '../../src/engine/network/pretrainedUNet';
import { buildResUNet, DEFAULT_NETWORK } from '../../src/engine/network/resUNet';
import { syntheticSample } from '../../src/synthetic/syntheticShapes';
import { perturb } from './perturb';

// Windows of 128 px with overlaps, mirror-averaged and refined: every path a validation prediction takes.
const TILES: TileOptions = {
  stride: 16,
  tileSize: 128,
  overlap: 64,
  margin: 16,
  onnxTileSize: 128,
  mirror: true,
  refine: true,
};

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

test('the graph is cut after the encoder: the head computes its outputs, the tail reads them', async () => {
  await resolveBackend('auto');
  const model = await buildNetwork(networkFor('mobilenetv2', 3));
  const graph = foldGraph(model);
  assert.ok(graph);
  try {
    const cut = encoderOutputNames(model);
    assert.ok(cut);
    const split = splitGraph(graph, cut);
    assert.ok(split);
    assert.equal(split.head.length + split.tail.length, graph.ops.length, 'every op on one side');
    const encoder = new Set(encoderLayerNames(model));
    for (const op of split.head) assert.ok(encoder.has(op.output), `${op.output} is an encoder layer`);
    assert.ok(
      split.tail.every((op) => !encoder.has(op.output)),
      'no encoder layer after the cut',
    );
    assert.deepEqual([...split.frontier].sort(), [...cut].sort(), 'the tail reads exactly the encoder outputs');
    assert.equal(splitGraph(graph, ['no_such_layer']), null);
    assert.equal(splitGraph(graph, [graph.output]), null, 'a cut after the output leaves no tail');
  } finally {
    disposeGraph(graph);
    model.dispose();
  }
  const scratch = buildResUNet({ ...DEFAULT_NETWORK, numClasses: 3, stageWidths: [8, 16] });
  assert.equal(encoderOutputNames(scratch), null, 'a scratch network has no pretrained encoder to cut after');
  scratch.dispose();
});

test('predictions through the cached encoder equal those of the whole network, and follow new weights', async () => {
  await resolveBackend('auto');
  setInferenceChoice('auto');
  for (const kind of ['mobilenetv2', 'distilled-resnet'] as const) {
    const model = await buildNetwork(networkFor(kind, 3));
    perturb(model);
    const { image } = syntheticSample({ width: 200, height: 136, numClasses: 3, seed: 5 });
    const cache = new EncoderCache(64 * 1024 * 1024);
    const predict = async (encoderCache?: EncoderCache): Promise<Float32Array> => {
      const p = await predictImage(model, image, TILES, { keepProbabilities: true, encoderCache });
      assert.ok(p.probabilities);
      return p.probabilities;
    };
    try {
      assert.ok(await splitWindowForward(model, cache), `${kind}: the split forward passes its check`);
      const whole = await predict();
      const first = await predict(cache);
      // 2 windows of 128 px across 200 x 136, each also mirrored; and the check's probe when the split was made.
      assert.deepEqual(cache.counts, { encoded: 4 + 1, reused: 0 }, `${kind}: every window and view encoded`);
      assert.ok(maxDiff(first, whole) < 1e-4, `${kind}: the same probabilities as the whole network`);
      const again = await predict(cache);
      assert.deepEqual(
        cache.counts,
        { encoded: 5 + 2, reused: 2 },
        `${kind}: the second prediction reads every window's features; the mirror images' are not kept`,
      );
      assert.equal(cache.heldBytes > 0, true);
      assert.equal(maxDiff(again, first), 0);

      // New decoder weights (as after a training epoch): the features are read again, the new decoder used.
      const head = model.getLayer('head');
      head.setWeights(head.getWeights().map((w) => tf.mul(w, -2)));
      const wholeNew = await predict();
      const cachedNew = await predict(cache);
      assert.equal(cache.counts.reused, 4, `${kind}: the encoder's features still hold`);
      assert.ok(maxDiff(wholeNew, whole) > 1e-3, 'the new weights change the prediction');
      assert.ok(maxDiff(cachedNew, wholeNew) < 1e-4, `${kind}: the cached path follows the new decoder`);

      // A changed encoder weight: its features are computed again.
      const encoderLayer = model.getLayer(encoderLayerNames(model).find((n) => model.getLayer(n).getWeights().length)!);
      encoderLayer.setWeights(encoderLayer.getWeights().map((w) => tf.mul(w, 1.5)));
      const encoded = cache.counts.encoded;
      const wholeEnc = await predict();
      const cachedEnc = await predict(cache);
      assert.ok(cache.counts.encoded >= encoded + 4, `${kind}: the new encoder encodes every window again`);
      assert.ok(maxDiff(cachedEnc, wholeEnc) < 1e-4, `${kind}: and the prediction follows it`);
    } finally {
      await cache.release();
      await releaseOnnx(model);
      model.dispose();
    }
    assert.equal(cache.heldBytes, 0, 'release drops the features');
  }
});

test('features beyond the budget are not kept; a trainable encoder or a network without one is not cut', async () => {
  await resolveBackend('auto');
  setInferenceChoice('auto');
  const model = await buildNetwork(networkFor('mobilenetv2', 2));
  perturb(model);
  const { image } = syntheticSample({ width: 96, height: 80, numClasses: 2, seed: 2 });
  const tiles: TileOptions = { ...TILES, mirror: false };
  const small = new EncoderCache(1024);
  try {
    const whole = (await predictImage(model, image, tiles)).classMap;
    assert.deepEqual((await predictImage(model, image, tiles, { encoderCache: small })).classMap, whole);
    assert.deepEqual((await predictImage(model, image, tiles, { encoderCache: small })).classMap, whole);
    assert.equal(small.heldBytes, 0, 'a window whose features exceed the budget is not kept');
    assert.equal(small.counts.reused, 0);
    const last = encoderLayerNames(model).at(-1)!;
    model.getLayer(last).trainable = true;
    assert.equal(await splitWindowForward(model, small), null, 'an encoder being trained is not cached');
    model.getLayer(last).trainable = false;
    setInferenceChoice('tfjs');
    assert.equal(await splitWindowForward(model, small), null, 'TF.js inference is not cut');
  } finally {
    setInferenceChoice('auto');
    await small.release();
    await releaseOnnx(model);
    model.dispose();
  }
  const scratch = buildResUNet({ ...DEFAULT_NETWORK, numClasses: 3, stageWidths: [8, 16] });
  const cache = new EncoderCache(1 << 20);
  assert.equal(await splitWindowForward(scratch, cache), null);
  const { image: img } = syntheticSample({ width: 64, height: 64, numClasses: 3, seed: 1 });
  const p = await predictImage(scratch, img, { ...TILES, mirror: false, refine: false }, { encoderCache: cache });
  assert.equal(p.classMap.length, 64 * 64, 'a network without a pretrained encoder predicts as before');
  assert.deepEqual(cache.counts, { encoded: 0, reused: 0 });
  await cache.release();
  await releaseOnnx(scratch);
  scratch.dispose();
});
