import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acceptance, significantlyWorse } from '../../src/engine/training/acceptance';
import { priorCorrection } from '../../src/engine/training/cropPolicy';
import { DEFAULT_FINE_TUNE } from '../../src/protocol/settings';
import type { MetricSummary } from '../../src/masks/segmentationMetrics';

const m = (boundaryIoU: number, changedFraction: number): MetricSummary => ({
  pixelAccuracy: 1 - changedFraction,
  miou: 0.5,
  dice: 0.5,
  boundaryIoU,
  foregroundBoundaryIoU: boundaryIoU,
  boundaryF: 0.5,
  changedFraction,
});

test('a new version becomes current only when validation boundary IoU and pixels to correct hold', () => {
  const s = DEFAULT_FINE_TUNE;
  assert.equal(acceptance(null, null, s).accepted, true, 'nothing to compare with: accepted');
  assert.equal(acceptance(m(0.5, 0.1), m(0.6, 0.05), s).accepted, true, 'both better');
  assert.equal(acceptance(m(0.5, 0.1), m(0.49, 0.11), s).accepted, true, 'within both tolerances');
  const fell = acceptance(m(0.5, 0.1), m(0.4, 0.1), s);
  assert.equal(fell.accepted, false);
  assert.match(fell.reason, /^rejected: validation boundary IoU fell from 0\.5000 to 0\.4000/);
  // The cold start suggests nothing (boundary IoU 0, pixels to correct = the objects' share); a version that
  // paints most of the image as objects raises boundary IoU a little and the repainting a lot: rejected.
  const painted = acceptance(m(0, 0.1), m(0.05, 0.7), s);
  assert.equal(painted.accepted, false);
  assert.match(painted.reason, /pixels to correct rose from 0\.1000 to 0\.7000/);
  const forced = acceptance(m(0, 0.1), m(0.05, 0.7), { ...s, force: true });
  assert.equal(forced.accepted, true);
  assert.match(forced.reason, /^accepted by --force despite/);
});

test('the class-prior correction lowers the logits of classes that training crops over-represent', () => {
  // Images: 90% background, 10% object; boundary-biased crops: 70% / 30%.
  const c = priorCorrection([900, 100], [700, 300], 1);
  assert.ok(Math.abs(c[0] - Math.log(901 / 1002 / (701 / 1002))) < 1e-12);
  assert.ok(c[1] < -1 && c[1] > -1.2, `object logit lowered by about log(3): ${c[1]}`);
  assert.ok(c[0] > 0, 'background raised');
  assert.ok(
    priorCorrection([900, 100], [700, 300], 0).every((v) => v === 0),
    'strength 0: off',
  );
  const half = priorCorrection([900, 100], [700, 300], 0.5);
  assert.ok(Math.abs(half[1] - c[1] / 2) < 1e-12, 'the strength scales it');
  // A class missing from the crops or the images still gets a finite correction.
  assert.ok(priorCorrection([900, 0, 100], [700, 0, 300], 1).every(Number.isFinite));
  assert.ok(priorCorrection([1000, 0], [700, 300], 1)[1] < -5, 'a class absent from the images is pushed far down');
});

test('with per-image validation metrics, a change must exceed the noise of the few images to keep a version back', () => {
  const s = DEFAULT_FINE_TUNE;
  // Three images: one unlucky image drags mean boundary IoU down by 0.033, the other two improved.
  const before = [m(0.2, 0.1), m(0.1, 0.1), m(0.05, 0.1)];
  const after = [m(0.05, 0.09), m(0.12, 0.08), m(0.08, 0.1)];
  const mean = (xs: MetricSummary[]): MetricSummary =>
    m(xs.reduce((a, x) => a + x.boundaryIoU, 0) / xs.length, xs.reduce((a, x) => a + x.changedFraction, 0) / xs.length);
  const noisy = acceptance(mean(before), mean(after), s, { before, after });
  assert.equal(noisy.accepted, true, noisy.reason);
  assert.match(noisy.reason, /boundary IoU fell from 0\.1167 to 0\.0833, within the noise of 3 images/);
  assert.equal(acceptance(mean(before), mean(after), s).accepted, false, 'the means alone would keep it back');
  // A consistent rise in pixels to correct on every image is kept back.
  const painted = [m(0.1, 0.5), m(0.1, 0.6), m(0.05, 0.55)];
  const consistent = acceptance(mean(before), mean(painted), s, { before, after: painted });
  assert.equal(consistent.accepted, false);
  assert.match(consistent.reason, /pixels to correct rose from 0\.1000 to 0\.5500/);
});

test('the paired test: mean beyond the tolerance and t beyond the 95% quantile', () => {
  assert.equal(significantlyWorse([0.01, 0.015], 0.02).worse, false, 'within the tolerance');
  assert.equal(significantlyWorse([0.5], 0.02).worse, true, 'one image: the mean decides');
  assert.equal(significantlyWorse([0.1, 0.1, 0.1], 0.02).worse, true, 'no spread: significant');
  // Mean 0.1 over tolerance 0.02 with spread: t = 0.08 / (sd / sqrt(n)).
  const r = significantlyWorse([0.3, -0.1, 0.1], 0.02);
  assert.ok(Math.abs(r.t - 0.08 / (0.2 / Math.sqrt(3))) < 1e-9, `t ${r.t}`);
  assert.equal(r.worse, false, 't = 0.69 is below 2.92 for 2 degrees of freedom');
  assert.equal(significantlyWorse([0.12, 0.1, 0.11, 0.09, 0.1, 0.13, 0.1, 0.1], 0.02).worse, true);
});
