import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { resolveBackend } from '../../src/engine/backends';
import { cachedFoldedForward, foldedForward, releaseFolded } from '../../src/engine/inference/foldedInference';
import { buildResUNet, DEFAULT_NETWORK } from '../../src/engine/network/resUNet';

async function maxDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const [x, y] = [await a.data(), await b.data()];
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

// Batch norm folded into the convolutions must give what the layers model gives.
test('folded inference equals model.predict, and is folded again when the weights change', async () => {
  await resolveBackend('auto');
  const model = buildResUNet({ ...DEFAULT_NETWORK, numClasses: 3, stageWidths: [16, 32] });
  // Non-trivial batch-norm statistics and affine parameters (a fresh model has mean 0, variance 1).
  let seed = 1;
  for (const layer of model.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
    const shapes = layer.getWeights().map((w) => w.shape);
    layer.setWeights(
      shapes.map((s, i) =>
        i === 3 ? tf.randomUniform(s, 0.5, 2, 'float32', seed++) : tf.randomUniform(s, -0.5, 0.5, 'float32', seed++),
      ),
    );
  }
  const x = tf.randomUniform([1, 48, 64, 3], -1, 1, 'float32', 7) as tf.Tensor4D;
  const forward = foldedForward(model);
  assert.ok(forward, 'every layer of the network can be folded');
  const ref = model.predict(x) as tf.Tensor;
  const out = forward(x);
  assert.ok((await maxDiff(ref, out)) < 1e-4, `folded vs layers: ${await maxDiff(ref, out)}`);
  forward.dispose();
  const cached = (await cachedFoldedForward(model))!;
  assert.equal(await cachedFoldedForward(model), cached, 'reused while the weights stay');
  const head = model.getLayer('head');
  head.setWeights(head.getWeights().map((w) => tf.mul(w, 3)));
  const refter = (await cachedFoldedForward(model))!;
  assert.notEqual(refter, cached, 'folded again after a weight changed');
  const ref2 = model.predict(x) as tf.Tensor;
  assert.ok((await maxDiff(ref2, refter(x))) < 1e-4);
  assert.ok((await maxDiff(ref, ref2)) > 1e-3, 'the change mattered');
  releaseFolded(model);
  model.dispose();
});

test('decoder dropout: whole channels dropped while training, an identity at inference (folded too)', async () => {
  await resolveBackend('auto');
  const model = buildResUNet({ ...DEFAULT_NETWORK, numClasses: 3, stageWidths: [16, 32], decoderDropout: 0.5 });
  const dropouts = model.layers.filter((l) => l.getClassName() === 'Dropout');
  assert.equal(dropouts.length, 2, 'one in each of the two decoder blocks, none in the encoder');
  assert.equal(
    buildResUNet({ ...DEFAULT_NETWORK, numClasses: 3, stageWidths: [16, 32] }).layers.filter(
      (l) => l.getClassName() === 'Dropout',
    ).length,
    0,
  );
  const x = tf.randomUniform([1, 32, 32, 3], -1, 1, 'float32', 3) as tf.Tensor4D;
  const forward = foldedForward(model);
  assert.ok(forward, 'a network with dropout folds');
  const ref = model.predict(x) as tf.Tensor;
  assert.ok((await maxDiff(ref, forward(x))) < 1e-4, 'folded inference equals predict');
  // While training the outputs change; a dropped channel is zero over the whole map of a sample.
  const block = model.getLayer('dec1_block_dropout');
  const probe = (await import('@tensorflow/tfjs-layers')).model({
    inputs: model.inputs,
    outputs: block.output as never,
  });
  const trained = probe.apply(x, { training: true }) as tf.Tensor4D;
  const plain = probe.predict(x) as tf.Tensor4D;
  const [t, p] = [await trained.data(), await plain.data()];
  const channels = trained.shape[3];
  let dropped = 0;
  for (let c = 0; c < channels; c++) {
    let zero = true;
    let live = false;
    for (let i = c; i < t.length; i += channels) {
      if (t[i] !== 0) zero = false;
      if (p[i] !== 0) live = true;
    }
    if (zero && live) dropped++;
  }
  assert.ok(dropped > 0 && dropped < channels, `${dropped} of ${channels} channels dropped whole`);
  assert.ok((await maxDiff(model.apply(x, { training: true }) as tf.Tensor, ref)) > 1e-3, 'training outputs differ');
  releaseFolded(model);
});
