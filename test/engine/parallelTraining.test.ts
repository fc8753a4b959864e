// Data-parallel training (engine/training/gradientPeer.ts): the gradient thread's half of a batch, averaged with
// this thread's, steps the network exactly as one thread would; runs are repeatable with a seed; no tensors leak.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { resolveBackend } from '../../src/engine/backends';
import { buildNetwork, networkFor } from '../../src/engine/network/networks';
import {
  gradientThreads,
  gradientWorkerFile,
  networkWeights,
  startGradientPeer,
} from '../../src/engine/training/gradientPeer';
import { setEncoderTrainableStages } from '../../src/engine/network/pretrainedUNet';
import { trainStep } from '../../src/engine/training/trainStep';
import { randomCrop, type Crop } from '../../src/engine/training/augment';
import { SeededRandom } from '../../src/masks/seededRandom';
import { syntheticSample } from '../../src/synthetic/syntheticShapes';

const SIZE = 32;
const LOSS = { dice: 0.5, boundary: 1, weightDecay: 1e-4 };

function crops(seed: number, count: number): Crop[] {
  const s = syntheticSample({ width: 64, height: 64, numClasses: 3, seed });
  const rng = new SeededRandom(seed);
  const o = { size: SIZE, boundaryBias: 0.5, boundaryRadius: 3, colorJitter: 0.1, hueJitter: 0 };
  return Array.from({ length: count }, () => randomCrop(s.image, s.mask, rng, o));
}

function copy(c: Crop): Crop {
  return { x: c.x.slice(), y: c.y.slice(), band: c.band.slice() };
}

/**
 * Runs steps on a fresh network (seeded, so every build starts from the same weights); its weights after, in
 * networkWeights order. With `unfreezeAt`, the deepest encoder stage is unfrozen before that step, as a full
 * fine-tune does (model.weights then changes its order).
 */
async function run(
  batches: Crop[][],
  threads: 1 | 2,
  encoder: 'scratch' | 'mobilenetv2' = 'scratch',
  unfreezeAt = -1,
): Promise<{ weights: Float32Array[]; peerTensors: number }> {
  const model = await buildNetwork(networkFor(encoder, 3));
  let trainable = model.trainableWeights.map((w) => w.read() as tf.Variable);
  let kernels = model.trainableWeights.filter((w) => w.name.includes('kernel')).map((w) => w.read());
  const optimizer = tf.train.adam(1e-3);
  const started = await startGradientPeer(model, threads);
  assert.equal(started.count, threads, started.reason);
  try {
    for (const [k, batch] of batches.entries()) {
      if (k === unfreezeAt) {
        assert.ok(setEncoderTrainableStages(model, 1));
        const now = model.trainableWeights.map((w) => w.read() as tf.Variable);
        trainable = [...trainable, ...now.filter((v) => !trainable.includes(v))];
        kernels = model.trainableWeights.filter((w) => w.name.includes('kernel')).map((w) => w.read());
      }
      await trainStep(
        { model, optimizer, trainable, kernels, size: SIZE, weights: LOSS },
        batch.map(copy),
        started.peer,
        k === 0,
      );
    }
    return {
      weights: networkWeights(model).map((w) => Float32Array.from(w.read().dataSync() as Float32Array)),
      peerTensors: started.peer?.peerTensors ?? 0,
    };
  } finally {
    await started.peer?.close();
    optimizer.dispose();
    model.dispose();
  }
}

function maxDiff(a: Float32Array[], b: Float32Array[]): number {
  let d = 0;
  a.forEach((v, i) => v.forEach((x, j) => (d = Math.max(d, Math.abs(x - b[i][j])))));
  return d;
}

test('threads: two on single-threaded backends with two cores, one on native TensorFlow, as set otherwise', () => {
  assert.equal(gradientThreads(0, 'wasm', 2), 2);
  assert.equal(gradientThreads(0, 'cpu', 8), 2);
  assert.equal(gradientThreads(0, 'wasm', 1), 1);
  assert.equal(gradientThreads(0, 'tensorflow', 8), 1);
  assert.equal(gradientThreads(1, 'wasm', 8), 1);
  assert.equal(gradientThreads(5, 'wasm', 1), 2);
  assert.equal(gradientThreads(2, 'tensorflow-gpu', 8), 1);
  assert.ok(gradientWorkerFile(), 'the build puts gradientWorker.js beside the model process');
});

test('two threads on a batch of two copies of a crop step exactly as one thread on the crop', async () => {
  await resolveBackend('auto');
  // Each thread then computes the gradient of the one crop (batch-norm statistics and soft Dice included),
  // and their average is that gradient: the weights (and batch-norm statistics) must be equal, not close.
  const singles = [crops(1, 1), crops(2, 1), crops(3, 1)];
  const one = await run(singles, 1);
  const two = await run(
    singles.map(([c]) => [c, copy(c)]),
    2,
  );
  assert.equal(maxDiff(one.weights, two.weights), 0);
  // And it did train: the weights moved.
  const start = await buildNetwork(networkFor('scratch', 3));
  const initial = networkWeights(start).map((w) => Float32Array.from(w.read().dataSync() as Float32Array));
  start.dispose();
  assert.ok(maxDiff(initial, two.weights) > 1e-4);
});

test('with the pretrained encoder, and a stage unfrozen midway, two threads still step exactly as one', async () => {
  await resolveBackend('auto');
  const singles = [crops(4, 1), crops(5, 1), crops(6, 1)];
  const one = await run(singles, 1, 'mobilenetv2', 1);
  const two = await run(
    singles.map(([c]) => [c, copy(c)]),
    2,
    'mobilenetv2',
    1,
  );
  assert.equal(maxDiff(one.weights, two.weights), 0);
});

test('two-thread training is repeatable, and the gradient thread keeps no tensors from step to step', async () => {
  await resolveBackend('auto');
  const batches = Array.from({ length: 6 }, (_, k) => crops(10 + k, 2));
  const a = await run(batches.slice(0, 3), 2);
  const b = await run(batches.slice(0, 3), 2);
  assert.equal(maxDiff(a.weights, b.weights), 0);
  const longer = await run(batches, 2);
  assert.equal(longer.peerTensors, a.peerTensors, 'tensors alive in the gradient thread grew with the steps');
});
