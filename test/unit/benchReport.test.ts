import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trainingSplit } from '../../src/cli/commands/bench';

const timing = { contextHead: 4, training: 8, crops: 1.2, validation: 3, pixelHead: 6, check: 0.3 };
const train = { encoderForwardMs: 60 };
const trainOnnx = { encoderForwardMs: 25 };
const r = {
  train: {
    threads: 1,
    reason: '',
    cropSize: 256,
    batchSize: 2,
    steps: 8,
    medianStepMs: 600,
    cropsPerSecond: 3,
    gflops: 5,
    ...train,
  },
  trainOnnx: {
    threads: 2,
    reason: '',
    cropSize: 256,
    batchSize: 2,
    steps: 8,
    medianStepMs: 120,
    cropsPerSecond: 16,
    gflops: 30,
    ...trainOnnx,
  },
};

test("the round's training steps split into data preparation, the encoder's passes and the rest", () => {
  // 64 steps x 25 ms through onnxruntime = 1.6 s of encoder; 8 - 1.2 - 1.6 = 5.2 s for the rest.
  assert.equal(
    trainingSplit(timing, 64, r, 'onnxruntime'),
    'data preparation 1.2 s, encoder forward about 1.6 s (64 x 25 ms), decoder forward and backward, loss and optimiser about 5.2 s',
  );
  // On TF.js the encoder's pass timed on TF.js counts: 64 x 60 ms = 3.8 s.
  assert.match(
    trainingSplit(timing, 64, r, 'tfjs') ?? '',
    /encoder forward about 3\.8 s \(64 x 60 ms\), .* about 3\.0 s$/,
  );
  // Without an encoder timing (a scratch network) the network's share is given whole.
  assert.equal(
    trainingSplit(timing, 64, { train: { ...r.train, encoderForwardMs: null } }, 'tfjs'),
    'data preparation 1.2 s, network 6.8 s',
  );
  // A round that did not time its crops (an older model server) gives nothing.
  const older = { ...timing, crops: undefined };
  assert.equal(trainingSplit(older, 64, r, 'onnxruntime'), null);
});
