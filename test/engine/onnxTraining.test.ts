import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { resolveBackend } from '../../src/engine/backends';
import { buildNetwork, networkFor } from '../../src/engine/network/networks';
import { loadOrt, sessionOptions } from '../../src/engine/inference/onnxInference';
import { stepLossFunction, trainStep } from '../../src/engine/training/trainStep';
import {
  OnnxTrainer,
  buildTrainingGraph,
  labelInputs,
  WeightOptimizer,
  type StepOptimizer,
} from '../../src/engine/training/onnxTraining';
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
    const trainer = await OnnxTrainer.create(o, graph, sessionOptions(false), { kind: 'sgd', learningRate: 0 });
    const ort = await trainer.run(
      batch,
      await Promise.all(graph.weights.map(async (w) => (await w.variable.data()) as Float32Array)),
    );
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

/** TF.js's own optimiser for a step optimiser's settings. */
function tfOptimizerFor(optimizer: StepOptimizer): tf.Optimizer {
  return optimizer.kind === 'adam'
    ? tf.train.adam(optimizer.learningRate)
    : optimizer.kind === 'momentum'
      ? tf.train.momentum(optimizer.learningRate, optimizer.momentum)
      : tf.train.sgd(optimizer.learningRate);
}

test('steps through onnxruntime move the weights and the running averages as TF.js steps do (SGD, momentum), and leak no tensor', async () => {
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
  const graph = buildTrainingGraph(model, vars, 2, size, weights);
  assert.ok(!('unsupported' in graph));
  const run = async (
    optimizer: StepOptimizer,
    viaOnnx: boolean,
    steps: number,
  ): Promise<{ loss: number; after: Float32Array[] }> => {
    model.weights.forEach((w, i) => w.write(start[i]));
    const tfOptimizer = tfOptimizerFor(optimizer);
    const onnx = viaOnnx ? await OnnxTrainer.create(o, graph, sessionOptions(false), optimizer) : null;
    let loss = 0;
    for (let i = 0; i < steps; i++)
      loss = await trainStep({ model, optimizer: tfOptimizer, trainable: vars, kernels, size, weights, onnx }, batch);
    onnx?.sync();
    await onnx?.release();
    const after = model.weights.map((w) => w.read().dataSync().slice() as Float32Array);
    tfOptimizer.dispose();
    return { loss, after };
  };
  // Plain gradient descent and momentum: the steps are linear in the gradients (decay included). Adam's first
  // step divides each gradient by its own size, so a near-zero gradient's float rounding would decide its
  // direction: its arithmetic is compared on the same gradients (the next test).
  for (const [optimizer, steps, tolerance] of [
    [{ kind: 'sgd', learningRate: 0.1 }, 1, 5e-3],
    [{ kind: 'momentum', learningRate: 0.05, momentum: 0.9 }, 3, 5e-3],
  ] as const) {
    const viaOnnx = await run(optimizer, true, steps);
    const viaTf = await run(optimizer, false, steps);
    const what = `${optimizer.kind}, ${steps} step(s)`;
    assert.ok(
      Math.abs(viaOnnx.loss - viaTf.loss) < 1e-3 * viaTf.loss,
      `${what}: loss ${viaOnnx.loss} against ${viaTf.loss}`,
    );
    let moved = 0;
    model.weights.forEach((w, i) => {
      const s = start[i].dataSync();
      const a = viaOnnx.after[i];
      const b = viaTf.after[i];
      let step = 0;
      for (let j = 0; j < a.length; j++) step = Math.max(step, Math.abs(b[j] - s[j]));
      if (step > 0) moved++;
      for (let j = 0; j < a.length; j++)
        assert.ok(
          Math.abs(a[j] - b[j]) <= tolerance * step,
          `${what}: ${w.name}[${j}]: ${a[j]} against ${b[j]} (step ${step})`,
        );
    });
    // Every trainable weight and both running averages of every batch norm.
    assert.ok(moved >= vars.length + 2 * graph.stats.length, `${what}: ${moved} weights moved`);
  }
  // The model keeps its weights until the trainer's sync.
  model.weights.forEach((w, i) => w.write(start[i]));
  const trainer = await OnnxTrainer.create(o, graph, sessionOptions(false), { kind: 'adam', learningRate: 1e-3 });
  const optimizer = tf.train.adam(1e-3);
  const ctx = { model, optimizer, trainable: vars, kernels, size, weights, onnx: trainer };
  await trainStep(ctx, batch);
  model.weights.forEach((w, i) => assert.deepEqual(w.read().dataSync(), start[i].dataSync(), `${w.name} before sync`));
  // No tensor is left behind by steps and syncs.
  trainer.sync();
  const count = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    await trainStep(ctx, batch);
    trainer.sync();
  }
  assert.equal(tf.memory().numTensors, count);
  optimizer.dispose();
  await trainer.release();
  tf.dispose(start);
  model.dispose();
});

test("the trainer's optimiser moves weights as TF.js's Adam, momentum and SGD do on the same gradients", async () => {
  await resolveBackend('wasm');
  const rng = new SeededRandom(12);
  const sizes = [7, 300, 1];
  for (const optimizer of [
    { kind: 'adam', learningRate: 1e-3 },
    { kind: 'momentum', learningRate: 0.05, momentum: 0.9 },
    { kind: 'sgd', learningRate: 0.1 },
  ] as const) {
    const start = sizes.map((n) => Float32Array.from({ length: n }, () => rng.normal()));
    const variables = start.map((v, k) => tf.variable(tf.tensor1d(v), true, `opt-${optimizer.kind}-${k}`));
    const tfOptimizer = tfOptimizerFor(optimizer);
    const mine = new WeightOptimizer(optimizer, sizes, tf.backend().epsilon());
    const values = start.map((v) => v.slice());
    for (let step = 0; step < 5; step++) {
      // Gradients of every size, tiny ones included (Adam divides each by its own running size). The weights
      // agree to a thousandth of their move, plus float rounding of their values.
      const grads = sizes.map((n) => Float32Array.from({ length: n }, () => rng.normal() * 10 ** rng.int(-6, 1)));
      const named = variables.map((v, k) => ({ name: v.name, tensor: tf.tensor1d(grads[k]) }));
      tfOptimizer.applyGradients(named);
      tf.dispose(named.map((n) => n.tensor));
      mine.apply(values, grads);
    }
    variables.forEach((v, k) => {
      const want = v.dataSync();
      let moved = 0;
      for (let i = 0; i < want.length; i++) moved = Math.max(moved, Math.abs(want[i] - start[k][i]));
      assert.ok(moved > 0, `${optimizer.kind}: the weights moved`);
      for (let i = 0; i < want.length; i++)
        assert.ok(
          Math.abs(values[k][i] - want[i]) <= 1e-3 * moved + 4e-7 * Math.abs(want[i]),
          `${optimizer.kind}[${k}][${i}]: ${values[k][i]} against ${want[i]}`,
        );
    });
    tfOptimizer.dispose();
    tf.dispose(variables);
  }
});
