import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { resolveBackend } from '../../src/engine/backends';
import { buildNetwork, networkFor } from '../../src/engine/network/networks';
import { loadOrt, sessionOptions } from '../../src/engine/inference/onnxInference';
import { stepLossFunction, trainStep } from '../../src/engine/training/trainStep';
import { OnnxTrainer, buildTrainingGraph, labelInputs } from '../../src/engine/training/onnxTraining';
import type { Crop } from '../../src/engine/training/augment';
import { SeededRandom } from '../../src/masks/seededRandom';
import type { EncoderKind } from '../../src/protocol/encoderKind';
import { relDiff } from './compare';

// The training graph through onnxruntime against TF.js's autodiff on the same weights and crops: the loss, the
// gradient of every trainable weight and every batch norm's batch statistics agree to float rounding.

function crops(n: number, size: number, classes: number, seed: number): Crop[] {
  const rng = new SeededRandom(seed);
  return Array.from({ length: n }, () => ({
    x: Float32Array.from({ length: size * size * 3 }, () => rng.range(-1, 1)),
    y: Int32Array.from({ length: size * size }, (_, i) =>
      i % 97 === 0 ? 255 : (Math.floor(i / size / 9) + ((i % size) >> 3) + (rng.next() < 0.05 ? 1 : 0)) % classes,
    ),
    band: Float32Array.from({ length: size * size }, () => (rng.next() < 0.2 ? 1 : 0)),
  }));
}

/** Every weight outside the frozen encoder moved a little, so no gradient is zero by construction (the head starts at zero). */
function perturb(model: tfl.LayersModel, seed: number): void {
  const rng = new SeededRandom(seed);
  for (const layer of model.layers) {
    if (/^(Conv1|bn_Conv1|expanded_conv|block_\d+_|rn_)/.test(layer.name)) continue;
    for (const w of layer.weights) {
      if (/moving_(mean|variance)/.test(w.name)) continue;
      const v = w.read();
      const noise = tf.tensor(
        Float32Array.from({ length: v.size }, () => rng.range(-0.2, 0.2)),
        v.shape,
      );
      w.write(tf.add(v, noise));
      noise.dispose();
    }
  }
}

test('labelInputs: one-hot classes channels first, ignore pixels neither valid nor in any class', () => {
  const c: Crop = {
    x: new Float32Array(4 * 3),
    y: Int32Array.from([0, 2, 255, 1]),
    band: Float32Array.from([1, 0, 1, 0]),
  };
  const { onehot, valid, band } = labelInputs([c], 2, 3);
  assert.deepEqual([...valid], [1, 1, 0, 1]);
  assert.deepEqual([...onehot], [1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
  assert.deepEqual([...band], [1, 0, 1, 0]);
});

for (const encoder of ['mobilenetv2', 'distilled-resnet'] as EncoderKind[]) {
  test(`onnxruntime trains the ${encoder} network as TF.js does: loss, every gradient, batch statistics`, async () => {
    const o = loadOrt();
    assert.ok(o, 'onnxruntime-node loads here');
    await resolveBackend('wasm');
    const classes = 4;
    const model = await buildNetwork(networkFor(encoder, classes));
    perturb(model, 3);
    const size = 64;
    const batch = crops(2, size, classes, 7);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const weights = { dice: 0.5, boundary: 1 };
    const graph = buildTrainingGraph(model, vars, 2, size, weights);
    assert.ok(!('unsupported' in graph), 'unsupported' in graph ? graph.unsupported : '');
    assert.equal(graph.weights.length, vars.length, 'every trainable variable is fed');
    const trainer = await OnnxTrainer.create(o, graph, sessionOptions(false));
    const ort = await trainer.run(batch);
    await trainer.release();
    // TF.js: the same step's loss and gradients; its training pass moves the running averages by the batch's.
    const bns = graph.stats.map((s) => s.layer);
    const before = bns.map((l) => l.weights.slice(-2).map((w) => w.read().dataSync().slice()));
    const step = stepLossFunction(model, [], batch, size, { ...weights, weightDecay: 0 });
    const { value, grads } = tf.variableGrads(step.loss, vars);
    step.dispose();
    const loss = (await value.data())[0];
    assert.ok(Math.abs(ort.loss - loss) <= 1e-4 * Math.abs(loss), `loss ${ort.loss} against ${loss}`);
    let checked = 0;
    for (const [k, f] of graph.weights.entries()) {
      const ref = (await grads[f.variable.name].data()) as Float32Array;
      let norm = 0;
      for (const v of ref) norm = Math.max(norm, Math.abs(v));
      assert.ok(norm > 0, `${f.variable.name}: TF.js's gradient is not zero`);
      const d = relDiff(ort.grads[k], ref);
      assert.ok(d < 2e-3, `the gradient of ${f.variable.name} differs by ${d.toExponential(2)} of its largest value`);
      checked++;
    }
    assert.ok(checked > 15, `${checked} gradients compared`);
    graph.stats.forEach((s, k) => {
      const [mean0, var0] = before[k];
      const [meanVar, varVar] = s.layer.weights.slice(-2).map((w) => w.read().dataSync());
      const m = s.momentum;
      for (let c = 0; c < mean0.length; c++) {
        const expectMean = mean0[c] * m + ort.stats[k].mean[c] * (1 - m);
        const expectVar = var0[c] * m + ort.stats[k].variance[c] * (1 - m);
        assert.ok(Math.abs(meanVar[c] - expectMean) < 1e-4 * (1 + Math.abs(expectMean)), `${s.layer.name} mean`);
        assert.ok(Math.abs(varVar[c] - expectVar) < 1e-4 * (1 + Math.abs(expectVar)), `${s.layer.name} variance`);
      }
    });
    tf.dispose([value, ...Object.values(grads)]);
    model.dispose();
  });
}

test('the training graph says why it cannot train a network: the scratch encoder, decoder dropout', async () => {
  await resolveBackend('wasm');
  const scratch = await buildNetwork(networkFor('scratch', 3));
  const r = buildTrainingGraph(
    scratch,
    scratch.trainableWeights.map((w) => w.read() as tf.Variable),
    2,
    64,
    { dice: 0.5, boundary: 1 },
  );
  assert.ok(
    'unsupported' in r && /stride-1/.test(r.unsupported),
    JSON.stringify('unsupported' in r ? r.unsupported : 'built'),
  );
  scratch.dispose();
  const dropout = await buildNetwork(networkFor('mobilenetv2', 3, { decoderDropout: 0.1 }));
  const d = buildTrainingGraph(
    dropout,
    dropout.trainableWeights.map((w) => w.read() as tf.Variable),
    2,
    64,
    { dice: 0.5, boundary: 1 },
  );
  assert.ok('unsupported' in d && /dropout/.test(d.unsupported));
  dropout.dispose();
});

test('an optimiser step through onnxruntime moves the weights and the running averages as a TF.js step does, and leaks no tensor', async () => {
  const o = loadOrt();
  assert.ok(o);
  await resolveBackend('wasm');
  const model = await buildNetwork(networkFor('mobilenetv2', 3));
  perturb(model, 4);
  const size = 64;
  const batch = crops(2, size, 3, 11);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const kernels = model.trainableWeights.filter((w) => w.name.includes('kernel')).map((w) => w.read());
  const weights = { dice: 0.5, boundary: 1, weightDecay: 1e-2 };
  const start = model.weights.map((w) => w.read().clone());
  const run = async (onnx: OnnxTrainer | null): Promise<{ loss: number; after: Float32Array[] }> => {
    model.weights.forEach((w, i) => w.write(start[i]));
    // Plain gradient descent: the step is the gradient (decay included) itself. Adam's first step divides each
    // gradient by its own size, so a near-zero gradient's float rounding would decide its direction.
    const optimizer = tf.train.sgd(0.1);
    const loss = await trainStep({ model, optimizer, trainable: vars, kernels, size, weights, onnx }, batch);
    const after = model.weights.map((w) => w.read().dataSync().slice() as Float32Array);
    optimizer.dispose();
    return { loss, after };
  };
  const graph = buildTrainingGraph(model, vars, 2, size, weights);
  assert.ok(!('unsupported' in graph));
  const trainer = await OnnxTrainer.create(o, graph, sessionOptions(false));
  const viaOnnx = await run(trainer);
  const viaTf = await run(null);
  assert.ok(Math.abs(viaOnnx.loss - viaTf.loss) < 1e-4 * viaTf.loss, `loss ${viaOnnx.loss} against ${viaTf.loss}`);
  let moved = 0;
  model.weights.forEach((w, i) => {
    const s = start[i].dataSync();
    const a = viaOnnx.after[i];
    const b = viaTf.after[i];
    let step = 0;
    for (let j = 0; j < a.length; j++) step = Math.max(step, Math.abs(b[j] - s[j]));
    if (step > 0) moved++;
    for (let j = 0; j < a.length; j++)
      assert.ok(Math.abs(a[j] - b[j]) <= 5e-3 * step, `${w.name}[${j}]: ${a[j]} against ${b[j]} (step ${step})`);
  });
  // Every trainable weight and both running averages of every batch norm.
  assert.ok(moved >= vars.length + 2 * graph.stats.length, `${moved} weights moved`);
  // No tensor is left behind by a step (Adam's moments exist after the first).
  const optimizer = tf.train.adam(1e-3);
  const ctx = { model, optimizer, trainable: vars, kernels, size, weights, onnx: trainer };
  await trainStep(ctx, batch);
  const count = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) await trainStep(ctx, batch);
  assert.equal(tf.memory().numTensors, count);
  optimizer.dispose();
  await trainer.release();
  tf.dispose(start);
  model.dispose();
});
