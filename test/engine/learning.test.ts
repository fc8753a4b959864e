import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveBackend } from '../../src/engine/backends';
import { DEFAULT_FINE_TUNE, fineTune, VALIDATE_EVERY } from '../../src/engine/training/fineTune';
import { validate, validatePerImage } from '../../src/engine/training/validation';
import { meanMetrics } from '../../src/masks/segmentationMetrics';
import { buildNetwork, networkFor } from '../../src/engine/network/networks';
import { buildResUNet, DEFAULT_NETWORK, networkStride } from '../../src/engine/network/resUNet';
import { syntheticSample } from '../../src/synthetic/syntheticShapes';
import { DEFAULT_TILES } from '../../src/engine/inference/tiledPredict';
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
  process.stdout.write(
    `# learning on ${backend.backend}: mIoU ${before.miou.toFixed(3)} -> ${after.miou.toFixed(3)}, boundary IoU ${before.boundaryIoU.toFixed(3)} -> ${after.boundaryIoU.toFixed(3)} in ${result.seconds.toFixed(1)} s\n`,
  );
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
  await assert.rejects(
    fineTune(m, train, [], settings, tiles, { signal: ctrl.signal, onProgress: () => ctrl.abort() }),
    { name: 'CancelledError' },
  );
  m.dispose();
});

test('the class-prior correction only moves the head bias, and the next fine-tune takes it off first', async () => {
  await resolveBackend('auto');
  const { image, mask } = syntheticSample({ width: 48, height: 48, seed: 6 });
  const train = [{ id: 'a', image, mask }];
  const net = { ...DEFAULT_NETWORK, numClasses: 2, stageWidths: [8, 16] };
  const tiles = { stride: networkStride(net), tileSize: 512, overlap: 128, margin: 32 };
  const settings = { ...DEFAULT_FINE_TUNE, epochs: 1, stepsPerEpoch: 2, cropSize: 32 };
  // By position: a second model's variables get suffixed names (stem_conv/kernel_1).
  const weights = (m: ReturnType<typeof buildResUNet>): Map<string, Float32Array> =>
    new Map(m.weights.map((w, i) => [`${i} ${m.weights[i].originalName}`, w.read().dataSync() as Float32Array]));
  const corrected = buildResUNet(net);
  const plain = buildResUNet(net);
  const r1 = await fineTune(corrected, train, [], settings, tiles);
  await fineTune(plain, train, [], { ...settings, priorCorrection: 0 }, tiles);
  assert.ok(
    r1.priorCorrection.length === 2 && r1.priorCorrection.some((v) => v !== 0),
    `a correction from this round's crops (${r1.priorCorrection.join(', ')})`,
  );
  const a = weights(corrected);
  const b = weights(plain);
  for (const [name, w] of a) {
    const other = b.get(name) as Float32Array;
    if (name.endsWith(' head/bias')) {
      w.forEach((v, c) =>
        assert.ok(
          Math.abs(v - other[c] - r1.priorCorrection[c]) < 1e-5,
          `head bias ${c}: ${v} = ${other[c]} + ${r1.priorCorrection[c]}`,
        ),
      );
    } else {
      assert.deepEqual(w, other, `${name} is untouched by the correction`);
    }
  }
  // A second round from each: the corrected model first takes its correction off, so both train identically.
  await fineTune(corrected, train, [], { ...settings, priorCorrection: 0, seed: 1 }, tiles, {
    previousCorrection: r1.priorCorrection,
  });
  await fineTune(plain, train, [], { ...settings, priorCorrection: 0, seed: 1 }, tiles);
  const a2 = weights(corrected);
  for (const [name, w] of weights(plain)) {
    const other = a2.get(name) as Float32Array;
    w.forEach((v, i) => assert.ok(Math.abs(v - other[i]) < 1e-4, `${name}[${i}]: ${other[i]} vs ${v}`));
  }
  corrected.dispose();
  plain.dispose();
});

test('the epochs are ranked on one pass of each validation image; the kept epoch is validated as pre-labels suggest (mirror-averaged, refined)', async () => {
  await resolveBackend('auto');
  const config = networkFor('mobilenetv2', 2);
  const model = await buildNetwork(config);
  const tiles = { stride: networkStride(config), tileSize: 512, overlap: 128, margin: 32, mirror: true, refine: true };
  const val = learningSamples(200, 2);
  const settings = { ...DEFAULT_FINE_TUNE, epochs: 2, stepsPerEpoch: 2, cropSize: 64, pixelHead: false };
  const result = await fineTune(model, learningSamples(100, 4), val, settings, tiles);
  // The stored weights carry the prior correction, as every validation saw them.
  const full = await validatePerImage(model, val, tiles);
  const once = await validatePerImage(model, val, { ...tiles, mirror: false });
  assert.deepEqual(result.perImageAfter, full);
  assert.deepEqual(result.metricsAfter, meanMetrics(full));
  const kept = result.history[(result.bestEpoch || result.history.length) - 1];
  assert.deepEqual(kept.val, meanMetrics(once), "the kept epoch's figures in the history: one pass, no mirror");
  assert.notDeepEqual(full, once, 'the mirror image changes the suggestion, so the two are told apart');
  model.dispose();
});

test('validation runs after every second epoch and after the last; the kept epoch is a validated one', async () => {
  await resolveBackend('auto');
  const config = networkFor('mobilenetv2', 2);
  const model = await buildNetwork(config);
  const tiles = { ...DEFAULT_TILES, stride: networkStride(config), mirror: false, refine: false };
  const settings = { ...DEFAULT_FINE_TUNE, epochs: 5, stepsPerEpoch: 1, cropSize: 64, pixelHead: false };
  const phases: string[] = [];
  const result = await fineTune(model, learningSamples(100, 4), learningSamples(200, 2), settings, tiles, {
    onProgress: (p) => {
      if (p.phase === 'validate') phases.push(`${p.epoch}:${p.val ? 'val' : '-'}`);
    },
  });
  assert.equal(VALIDATE_EVERY, 2);
  assert.deepEqual(
    result.history.map((h) => (h.val ? h.epoch : -h.epoch)),
    [-1, 2, -3, 4, 5],
    'epochs 2, 4 and the last validated',
  );
  assert.deepEqual(
    phases,
    ['1:-', '2:val', '3:-', '4:val', '5:val'],
    'every epoch reports its end; validated ones their figures',
  );
  assert.ok([0, 2, 4, 5].includes(result.bestEpoch), `kept epoch ${result.bestEpoch}`);
  model.dispose();
});
