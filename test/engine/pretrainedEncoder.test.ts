import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { resolveBackend } from '../../src/engine/backends';
import { DEFAULT_FINE_TUNE, fineTune, PRETRAINED_CROP, SCRATCH_CROP } from '../../src/engine/training/fineTune';
import { resolveCropSize, stepsPerEpoch } from '../../src/engine/training/cropPolicy';
import { validate } from '../../src/engine/training/validation';
import { featureStats, type FeatureStats } from '../../src/engine/network/featureStats';
import { foldedForward } from '../../src/engine/inference/foldedInference';
import { buildNetwork, networkFor } from '../../src/engine/network/networks';
import {
  buildPretrainedUNet,
  ENCODERS,
  encoderLayerNames,
  encoderStages,
  findEncoderFolder,
  loadShippedEncoder,
  PRETRAINED_NETWORK,
} from '../../src/engine/network/pretrainedUNet';
import { countParameters, networkStride } from '../../src/engine/network/resUNet';
import { syntheticSample } from '../../src/synthetic/syntheticShapes';
import { LEARNING_SETTINGS, learningSamples } from './learningData';

interface Expected {
  weightsSha256: string;
  featureLayers: string[];
  input: { file: string; shape: [number, number, number, number] };
  stats: { shape: number[]; mean: number; std: number; max: number; positive: number }[];
}

function readExpected(folder: string): Expected {
  return JSON.parse(fs.readFileSync(path.join(folder, 'expected-features.json'), 'utf8')) as Expected;
}

function fixedInput(folder: string, e: Expected): tf.Tensor4D {
  const bytes = fs.readFileSync(path.join(folder, e.input.file));
  return tf.tensor4d(
    new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)),
    e.input.shape,
  );
}

function stats(t: tf.Tensor): FeatureStats {
  return featureStats(t.dataSync());
}

function close(actual: number, expected: number, what: string, tol = 1e-4): void {
  assert.ok(
    Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} vs ${expected} as shipped`,
  );
}

async function encoderWeights(model: tfl.LayersModel): Promise<Map<string, Float32Array>> {
  const names = new Set(encoderLayerNames(model));
  const out = new Map<string, Float32Array>();
  for (const layer of model.layers.filter((l) => names.has(l.name))) {
    layer.getWeights().forEach((w, i) => out.set(`${layer.name}/${i}`, w.dataSync() as Float32Array));
  }
  return out;
}

for (const kind of ['mobilenetv2', 'distilled-resnet'] as const)
  test(`the shipped ${kind} encoder loads from local files and gives the features it gave when shipped`, async () => {
    await resolveBackend('auto');
    const folder = findEncoderFolder(kind);
    const features = ENCODERS[kind].features;
    const e = readExpected(folder);
    const sha = createHash('sha256')
      .update(fs.readFileSync(path.join(folder, 'weights.bin')))
      .digest('hex');
    assert.equal(sha, e.weightsSha256, 'weights.bin is the file the extraction (or distillation) script wrote');
    assert.deepEqual(e.featureLayers, features);
    const encoder = await loadShippedEncoder(folder);
    const x = fixedInput(folder, e);
    const outs = encoder.predict(x) as tf.Tensor[];
    assert.equal(outs.length, 4);
    outs.forEach((o, i) => {
      assert.deepEqual(o.shape, e.stats[i].shape, `${features[i]} shape`);
      const s = stats(o);
      for (const k of ['mean', 'std', 'max', 'positive'] as const) close(s[k], e.stats[i][k], `${features[i]} ${k}`);
    });
    // In the segmentation network the batch norms are folded into the convolutions: same features.
    const net = buildPretrainedUNet({ ...PRETRAINED_NETWORK, encoder: kind, numClasses: 3 }, encoder);
    const probe = tfl.model({
      inputs: net.inputs,
      outputs: features.map((n) => net.getLayer(n).output as tfl.SymbolicTensor),
    });
    const inNet = probe.predict(x) as tf.Tensor[];
    inNet.forEach((o, i) => {
      const d = tf.max(tf.abs(tf.sub(o, outs[i]))).dataSync()[0];
      assert.ok(d < 1e-3, `${features[i]}: folded encoder differs by ${d}`);
    });
    // And the folded fast path of the whole network equals model.predict.
    const forward = foldedForward(net);
    assert.ok(forward, 'every encoder layer folds (depthwise convolutions, ReLU6, zero padding)');
    const big = tf.randomUniform([1, 64, 96, 3], -1, 1, 'float32', 3) as tf.Tensor4D;
    const d = tf.max(tf.abs(tf.sub(forward(big), net.predict(big) as tf.Tensor))).dataSync()[0];
    assert.ok(d < 1e-4, `folded vs layers: ${d}`);
    forward.dispose();
    tf.dispose([x, big, ...outs, ...inNet]);
    encoder.dispose();
    net.dispose();
  });

for (const kind of ['mobilenetv2', 'distilled-resnet'] as const)
  test(`a frozen ${kind} encoder stays bit-identical through a fine-tune; the learning test holds with it`, async () => {
    const backend = await resolveBackend('auto');
    const train = learningSamples(100, 8);
    const val = learningSamples(200, 4);
    const config = networkFor(kind, 2);
    const model = await buildNetwork(config);
    const { trainable, total } = countParameters(model);
    assert.ok(trainable < total / 5, `only the decoder trains: ${trainable} of ${total}`);
    const frozen = await encoderWeights(model);
    // Folded kernels and biases: 52 convolutions in MobileNetV2, 14 in the distilled ResNet.
    assert.ok(frozen.size >= 28, `the encoder's kernels and biases: ${frozen.size}`);
    const tiles = { stride: networkStride(config), tileSize: 512, overlap: 128, margin: 32 };
    const before = await validate(model, val, tiles);
    const result = await fineTune(model, train, val, LEARNING_SETTINGS, tiles);
    const after = await validate(model, val, tiles);
    assert.ok(before && after);
    process.stdout.write(
      `# learning with the frozen ${kind} encoder on ${backend.backend}: mIoU ${before.miou.toFixed(3)} -> ${after.miou.toFixed(3)}, boundary IoU ${before.boundaryIoU.toFixed(3)} -> ${after.boundaryIoU.toFixed(3)} in ${result.seconds.toFixed(1)} s\n`,
    );
    assert.ok(after.miou >= 0.9, `validation mIoU after fine-tuning ${after.miou}`);
    assert.ok(result.history[result.history.length - 1].loss < result.history[0].loss, 'loss falls');
    const afterWeights = await encoderWeights(model);
    for (const [name, w] of frozen) {
      const a = afterWeights.get(name) as Float32Array;
      assert.ok(
        a &&
          Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(w.buffer, w.byteOffset, w.byteLength)),
        `${name} changed`,
      );
    }
    model.dispose();
  });

test('the learning test holds in full mode too: every encoder stage unfrozen in turn', async () => {
  const backend = await resolveBackend('auto');
  const config = networkFor('mobilenetv2', 2);
  const model = await buildNetwork(config);
  const val = learningSamples(200, 4);
  const tiles = { stride: networkStride(config), tileSize: 512, overlap: 128, margin: 32 };
  const result = await fineTune(model, learningSamples(100, 8), val, { ...LEARNING_SETTINGS, encoderStages: 4 }, tiles);
  const after = await validate(model, val, tiles);
  assert.ok(after);
  process.stdout.write(
    `# learning in full mode (4 encoder stages unfrozen) on ${backend.backend}: mIoU ${after.miou.toFixed(3)}, boundary IoU ${after.boundaryIoU.toFixed(3)} in ${result.seconds.toFixed(1)} s\n`,
  );
  assert.ok(after.miou >= 0.9, `validation mIoU after a full fine-tune ${after.miou}`);
  model.dispose();
});

test('a full fine-tune unfreezes the encoder stage by stage, deepest first, and leaves the rest bit-identical', async () => {
  await resolveBackend('auto');
  const config = networkFor('mobilenetv2', 2);
  const model = await buildNetwork(config);
  const stages = encoderStages(model);
  const before = await encoderWeights(model);
  const { image, mask } = syntheticSample({ width: 64, height: 64, numClasses: 2, seed: 3 });
  const tiles = { stride: networkStride(config), tileSize: 512, overlap: 128, margin: 32 };
  // 3 epochs, 2 stages: epoch 1 the decoder only, epoch 2 also stage 3 (the deepest), epoch 3 also stage 2.
  await fineTune(
    model,
    [{ id: 'a', image, mask }],
    [],
    { ...DEFAULT_FINE_TUNE, epochs: 3, stepsPerEpoch: 1, cropSize: 32, batchSize: 2, encoderStages: 2 },
    tiles,
  );
  const after = await encoderWeights(model);
  const changedStages = new Set<number>();
  for (const [key, w] of before) {
    const a = after.get(key) as Float32Array;
    if (!Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(w.buffer, w.byteOffset, w.byteLength)))
      changedStages.add(stages.get(key.split('/')[0]) as number);
  }
  assert.deepEqual([...changedStages].sort(), [2, 3], 'the two deepest stages trained, the two first did not');
  assert.equal(
    model.layers.filter((l) => stages.has(l.name) && l.trainable).length,
    0,
    'the encoder is frozen again for the stored model',
  );
  model.dispose();
});

test('the automatic crop size: 256 pixels under a pretrained encoder, 128 from scratch, at most the largest image; a set size is rounded to 16', async () => {
  assert.equal(resolveCropSize(0, true), PRETRAINED_CROP);
  assert.equal(resolveCropSize(0, false), SCRATCH_CROP);
  assert.equal(resolveCropSize(0, true, 1000), PRETRAINED_CROP);
  assert.equal(resolveCropSize(0, true, 190), 192);
  assert.equal(resolveCropSize(0, false, 100), 112);
  assert.equal(resolveCropSize(100, true), 112);
  assert.equal(resolveCropSize(300, false, 64), 304);
  await resolveBackend('auto');
  const { image, mask } = syntheticSample({ width: 300, height: 140, numClasses: 2, seed: 5 });
  const used: number[] = [];
  for (const encoder of ['mobilenetv2', 'scratch'] as const) {
    const config = networkFor(encoder, 2);
    const model = await buildNetwork(config);
    const tiles = { stride: networkStride(config), tileSize: 512, overlap: 128, margin: 32 };
    const r = await fineTune(
      model,
      [{ id: 'a', image, mask }],
      [],
      { ...DEFAULT_FINE_TUNE, epochs: 1, stepsPerEpoch: 1, batchSize: 1 },
      tiles,
    );
    used.push(r.cropSize);
    model.dispose();
  }
  assert.deepEqual(used, [PRETRAINED_CROP, SCRATCH_CROP]);
});

test('automatic steps per epoch: two crops per image, 16-32 steps, half as many with 256-pixel crops; a set number is kept', () => {
  const steps = (images: number, crop?: number, set = 0): number =>
    stepsPerEpoch({ ...DEFAULT_FINE_TUNE, stepsPerEpoch: set }, images, crop);
  assert.deepEqual([steps(3), steps(16), steps(19), steps(40)], [16, 16, 19, 32]);
  assert.deepEqual([steps(3, 256), steps(16, 256), steps(19, 256), steps(40, 256)], [8, 8, 10, 16]);
  assert.equal(steps(3, 192), 15);
  assert.equal(steps(3, 64), 16);
  assert.equal(steps(19, 256, 5), 5);
});
