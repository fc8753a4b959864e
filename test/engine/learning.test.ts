import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveBackend } from '../../src/engine/backends';
import { DEFAULT_FINE_TUNE, fineTune, validate } from '../../src/engine/fineTune';
import { buildResUNet, DEFAULT_NETWORK, networkStride } from '../../src/engine/resUNet';
import { syntheticSample } from '../../src/masks/syntheticShapes';
import { LEARNING_SETTINGS, learningSamples } from './learningData';

// The engine's learning test: from an untrained network (chance), a fine-tune on generated shapes on
// textured noise lifts held-out mIoU to at least 0.9.
test('fine-tuning lifts validation IoU from chance to at least 0.9', async () => {
  const backend = await resolveBackend('auto');
  const train = learningSamples(100, 8);
  const val = learningSamples(200, 4);
  const net = { ...DEFAULT_NETWORK, numClasses: 2, stageWidths: [8, 16, 32] };
  const model = buildResUNet(net);
  const tiles = { stride: networkStride(net), tileSize: 512, overlap: 128, margin: 32 };
  const before = await validate(model, val, tiles);
  const result = await fineTune(model, train, val, LEARNING_SETTINGS, tiles);
  const after = await validate(model, val, tiles);
  assert.ok(before && after);
  process.stdout.write(`# learning on ${backend.backend}: mIoU ${before.miou.toFixed(3)} -> ${after.miou.toFixed(3)}, boundary IoU ${before.boundaryIoU.toFixed(3)} -> ${after.boundaryIoU.toFixed(3)} in ${result.seconds.toFixed(1)} s\n`);
  assert.ok(before.miou < 0.6, `an untrained net is near chance, got mIoU ${before.miou}`);
  assert.ok(after.miou >= 0.9, `validation mIoU after fine-tuning ${after.miou}`);
  assert.ok(result.history.length >= 1 && result.history.every((h) => Number.isFinite(h.loss)));
  assert.ok(result.history[result.history.length - 1].loss < result.history[0].loss, 'loss falls');
  model.dispose();
});

test('fine-tuning is repeatable with a seed and cancellable', async () => {
  await resolveBackend('auto');
  const { image, mask } = syntheticSample({ width: 48, height: 48, seed: 5 });
  const train = [{ id: 'a', image, mask }];
  const net = { ...DEFAULT_NETWORK, numClasses: 2, stageWidths: [8, 16] };
  const tiles = { stride: networkStride(net), tileSize: 512, overlap: 128, margin: 32 };
  const settings = { ...DEFAULT_FINE_TUNE, epochs: 2, stepsPerEpoch: 2, cropSize: 32 };
  const run = async (): Promise<number[]> => {
    const m = buildResUNet(net);
    const r = await fineTune(m, train, [], settings, tiles);
    const w = await m.getWeights()[0].data();
    m.dispose();
    return [...r.history.map((h) => h.loss), w[0], w[7]];
  };
  assert.deepEqual(await run(), await run());
  const m = buildResUNet(net);
  const ctrl = new AbortController();
  await assert.rejects(fineTune(m, train, [], settings, tiles, { signal: ctrl.signal, onProgress: () => ctrl.abort() }), { name: 'CancelledError' });
  m.dispose();
});
