import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { resolveBackend } from '../../src/engine/backends';
import { buildNetwork, networkFor } from '../../src/engine/network/networks';
import { DEFAULT_TILES, predictImage } from '../../src/engine/inference/tiledPredict';
import { setInferenceChoice } from '../../src/engine/inference/onnxInference';
import { networkStride } from '../../src/engine/network/resUNet';
import { stepLossFunction } from '../../src/engine/training/trainStep';
import type { Crop } from '../../src/engine/training/augment';
import { probeWebGpu } from '../../src/engine/webgpuAdapter';
import { SeededRandom } from '../../src/masks/seededRandom';
import type { EncoderKind } from '../../src/protocol/encoderKind';
import { relDiff } from './compare';

// The WebGPU backend against WebAssembly, on every kernel the three networks use in training and prediction: the
// same weights and crops give the same outputs, loss and gradients of every weight (encoder included, as a
// GPU fine-tune unfreezes it). Runs on whatever adapter Dawn finds; on a machine without a GPU that is a
// software one (Mesa's lavapipe, which .ci/run installs), allowed here by MASKLOOP_WEBGPU=software. Without
// any adapter the test is skipped with the probe's reason, unless MASKLOOP_REQUIRE_WEBGPU=1 (set by .ci/run).

process.env.MASKLOOP_WEBGPU = 'software';

function crops(n: number, size: number, classes: number, seed: number): Crop[] {
  const rng = new SeededRandom(seed);
  return Array.from({ length: n }, () => ({
    x: Float32Array.from({ length: size * size * 3 }, () => rng.range(-1, 1)),
    y: Int32Array.from({ length: size * size }, (_, i) =>
      i % 97 === 0 ? 255 : (Math.floor(i / size / 9) + ((i % size) >> 3)) % classes,
    ),
    band: Float32Array.from({ length: size * size }, () => (rng.next() < 0.2 ? 1 : 0)),
  }));
}

interface StepFigures {
  probs: Float32Array;
  loss: number;
  grads: Float32Array[];
}

async function stepOn(backend: string, model: tfl.LayersModel, batch: Crop[], size: number): Promise<StepFigures> {
  assert.ok(await tf.setBackend(backend));
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const kernels = vars.filter((v) => v.name.includes('kernel'));
  const step = stepLossFunction(model, kernels, batch, size, { dice: 0.5, boundary: 1, weightDecay: 1e-4 });
  try {
    // Inference first: the training pass moves batch norm's running statistics.
    const x = tf.tensor4d(batch[0].x, [1, size, size, 3]);
    const probs = model.predict(x) as tf.Tensor;
    const { value, grads } = tf.variableGrads(step.loss, vars);
    const out = {
      probs: (await probs.data()) as Float32Array,
      loss: (await value.data())[0],
      grads: await Promise.all(vars.map(async (v) => (await grads[v.name].data()) as Float32Array)),
    };
    tf.dispose([value, x, probs, ...Object.values(grads)]);
    return out;
  } finally {
    step.dispose();
  }
}

for (const encoder of ['mobilenetv2', 'distilled-resnet', 'scratch'] as EncoderKind[]) {
  test(`WebGPU trains and predicts the ${encoder} network as WebAssembly does`, async (t) => {
    const probe = await probeWebGpu();
    if (!probe.usable) {
      if (process.env.MASKLOOP_REQUIRE_WEBGPU === '1') assert.fail(`no WebGPU adapter: ${probe.reason}`);
      t.skip(`no WebGPU adapter: ${probe.reason}`);
      return;
    }
    const report = await resolveBackend('webgpu');
    assert.equal(report.backend, 'webgpu');
    assert.ok(report.adapter, 'the report names the adapter');
    await resolveBackend('wasm');
    const model = await buildNetwork(networkFor(encoder, 3));
    for (const layer of model.layers) layer.trainable = true;
    const size = 64;
    const batch = crops(2, size, 3, 5);
    // The same running statistics for both: the training pass moves them, so each backend starts from a copy.
    const start = model.weights.map((w) => w.read().clone());
    const wasm = await stepOn('wasm', model, batch, size);
    model.weights.forEach((w, i) => w.write(start[i]));
    const gpu = await stepOn('webgpu', model, batch, size);
    tf.dispose(start);
    assert.ok(Math.abs(gpu.loss - wasm.loss) <= 1e-4 * Math.abs(wasm.loss), `loss ${gpu.loss} against ${wasm.loss}`);
    assert.ok(relDiff(gpu.probs, wasm.probs) < 1e-3, `probabilities differ by ${relDiff(gpu.probs, wasm.probs)}`);
    const names = model.trainableWeights.map((w) => w.name);
    assert.ok(names.length > 20, `${names.length} trainable weights`);
    names.forEach((name, i) => {
      const d = relDiff(gpu.grads[i], wasm.grads[i]);
      assert.ok(d < 2e-3, `the gradient of ${name} differs by ${d.toExponential(2)} of its largest value`);
    });
    // A pre-label through the tiled prediction (batch norm folded, mirror-averaged, guided filter) on both.
    const rng = new SeededRandom(9);
    const image = { width: 150, height: 97, data: Uint8Array.from({ length: 150 * 97 * 3 }, () => rng.int(0, 256)) };
    const tiles = { ...DEFAULT_TILES, stride: networkStride(networkFor(encoder, 3)) };
    setInferenceChoice('tfjs'); // both through TF.js, not onnxruntime
    await tf.setBackend('wasm');
    const a = await predictImage(model, image, tiles, { keepProbabilities: true });
    await tf.setBackend('webgpu');
    const b = await predictImage(model, image, tiles, { keepProbabilities: true });
    assert.ok(relDiff(b.probabilities!, a.probabilities!) < 1e-3);
    let same = 0;
    for (let i = 0; i < a.classMap.length; i++) if (a.classMap[i] === b.classMap[i]) same++;
    assert.ok(same / a.classMap.length > 0.999, `${same} of ${a.classMap.length} pixels agree`);
    await tf.setBackend('wasm');
    setInferenceChoice('auto');
    model.dispose();
  });
}
