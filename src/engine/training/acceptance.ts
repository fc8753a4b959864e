// Whether a fine-tuned version becomes current: its validation metrics against its parent's, with a paired
// t-test so that one unlucky image among a few does not keep back a better version.
import type { MetricSummary } from '../../masks/segmentationMetrics';
import type { FineTuneSettings } from '../../protocol/settings';

/** One-sided 95% quantiles of Student's t, by degrees of freedom (1-30; beyond, the normal's 1.645). */
const T95 = [
  6.314, 2.92, 2.353, 2.132, 2.015, 1.943, 1.895, 1.86, 1.833, 1.812, 1.796, 1.782, 1.771, 1.761, 1.753, 1.746, 1.74,
  1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697,
];

/**
 * Whether a per-image paired worsening (each value: how much worse the new version is on one validation
 * image) goes beyond `tolerance` by more than the noise of so few images: a one-sided paired t-test at 95%.
 * With one image there is no noise estimate, and any mean beyond the tolerance counts.
 */
export function significantlyWorse(worsening: readonly number[], tolerance: number): { worse: boolean; t: number } {
  const n = worsening.length;
  const mean = worsening.reduce((a, b) => a + b, 0) / n;
  if (!(mean > tolerance)) return { worse: false, t: 0 };
  if (n < 2) return { worse: true, t: Infinity };
  const sd = Math.sqrt(worsening.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const t = sd === 0 ? Infinity : (mean - tolerance) / (sd / Math.sqrt(n));
  return { worse: t > (T95[n - 2] ?? 1.645), t };
}

/**
 * Whether a fine-tuned version becomes current, and why, from validation metrics before and after it: it is
 * kept back when validation boundary IoU fell, or pixels to correct rose, beyond the tolerances. Given the
 * per-image metrics, a change must also exceed the noise of the few validation images (`significantlyWorse`):
 * with three images, one unlucky image must not keep back a version trained on twice the data.
 */
export function acceptance(
  before: MetricSummary | null,
  after: MetricSummary | null,
  settings: Pick<FineTuneSettings, 'maxBoundaryDrop' | 'maxChangedRise' | 'force'>,
  perImage?: { before: readonly MetricSummary[]; after: readonly MetricSummary[] },
): { accepted: boolean; reason: string } {
  if (!before || !after) return { accepted: true, reason: 'accepted: no validation images yet, so nothing to compare' };
  const paired =
    perImage && perImage.before.length === perImage.after.length && perImage.before.length > 0 ? perImage : null;
  const problems: string[] = [];
  const noise: string[] = [];
  const check = (
    what: string,
    from: number,
    to: number,
    worsening: number[],
    tolerance: number,
    direction: 'fell' | 'rose',
  ): void => {
    const { worse, t } = significantlyWorse(worsening, tolerance);
    const change = `validation ${what} ${direction} from ${from.toFixed(4)} to ${to.toFixed(4)}`;
    if (worse) problems.push(`${change} (allowed ${direction === 'fell' ? 'drop' : 'rise'} ${tolerance})`);
    else if (Math.abs(to - from) > tolerance && (direction === 'fell' ? to < from : to > from))
      noise.push(`${change}, within the noise of ${worsening.length} images (t = ${t.toFixed(2)})`);
  };
  const diffs = (key: keyof MetricSummary, sign: number): number[] =>
    paired ? paired.before.map((b, i) => sign * (paired.after[i][key] - b[key])) : [sign * (after[key] - before[key])];
  check(
    'boundary IoU',
    before.boundaryIoU,
    after.boundaryIoU,
    diffs('boundaryIoU', -1),
    settings.maxBoundaryDrop,
    'fell',
  );
  check(
    'pixels to correct',
    before.changedFraction,
    after.changedFraction,
    diffs('changedFraction', 1),
    settings.maxChangedRise,
    'rose',
  );
  if (problems.length === 0) {
    return {
      accepted: true,
      reason:
        noise.length === 0
          ? 'accepted: validation boundary IoU and pixels to correct held or improved'
          : `accepted: ${noise.join('; ')}`,
    };
  }
  return {
    accepted: settings.force,
    reason: `${settings.force ? 'accepted by --force despite' : 'rejected:'} ${problems.join('; ')}`,
  };
}
