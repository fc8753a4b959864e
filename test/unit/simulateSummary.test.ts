import assert from 'node:assert/strict';
import { test } from 'node:test';
import { summarizeSimulation, type SimStep } from '../../src/cli/simulateLoop';

const step = (changedFraction: number, emptyFraction: number, boundaryIoU = 0.5): SimStep => ({
  image: 'x.png',
  modelVersion: 1,
  changedFraction,
  boundaryIoU,
  miou: 0.5,
  emptyFraction,
});

test('the effort summary counts from the 3rd image, and rejecting costs what an empty suggestion costs', () => {
  const steps = [step(0.9, 0.1), step(0.9, 0.1), step(0.02, 0.1, 0.8), step(0.6, 0.1, 0.2), step(0.04, 0.12, 0.6)];
  const s = summarizeSimulation(steps, [
    {
      afterImages: 2,
      version: 1,
      accepted: true,
      reason: 'accepted',
      seconds: 10,
      trainImages: 1,
      validationImages: 1,
    },
    {
      afterImages: 4,
      version: 2,
      accepted: false,
      reason: 'rejected',
      seconds: 5.5,
      trainImages: 3,
      validationImages: 1,
    },
  ]);
  assert.equal(s.fromImage, 3);
  assert.equal(s.images, 3);
  assert.ok(Math.abs(s.changedFraction - 0.22) < 1e-12, `mean of 0.02, 0.6, 0.04: ${s.changedFraction}`);
  assert.equal(s.medianChangedFraction, 0.04);
  assert.ok(Math.abs(s.boundaryIoU - 1.6 / 3) < 1e-12);
  assert.ok(Math.abs(s.emptyFraction - 0.32 / 3) < 1e-12);
  // The 60% suggestion is rejected (10% to paint instead); the others are corrected.
  assert.ok(Math.abs(s.withRejectFraction - 0.16 / 3) < 1e-12, `${s.withRejectFraction}`);
  assert.equal(s.fineTuneSeconds, 15.5);
  const short = summarizeSimulation([step(0.3, 0.2), step(0.1, 0.2)], []);
  assert.equal(short.fromImage, 1, 'fewer than 3 images: all of them count');
  assert.equal(short.images, 2);
  assert.equal(short.medianChangedFraction, 0.2);
});
