// When a fine-tune is due in the labelling loop. Frames of a sequence (suggestions follow their neighbours): as
// soon as two corrected masks exist, then after every 4th. Unrelated images: after every 4th only.
// The editor reminds the person by this rule (extension/fineTuneReminder.ts) and `maskloop simulate` follows it
// by default, so the loop measured is the loop a person is led through.
// Why two in a sequence: with fine-tunes only after every 4th image, the 3rd and 4th frames are suggested by an
// untrained model and cost about what an empty suggestion costs (street-1hz 66-68% of pixels to change, EM
// sections 21-26%); a first fine-tune on two masks brought the real sets' loops (each image alone, second
// halves) from 23.1% to 17.2% (street-1hz), from 15.1% to 5.8% (street-15hz) and from 13.6% to 10.5% (EM).
// Why not on unrelated images: two of them show a class on one or two backgrounds, and the next image's new
// background is taken for it. On the generated composite scenes (each image unrelated to the others) the early
// fine-tune suggested 60% and 48% of the 3rd and 4th scenes wrong, where an empty suggestion costs 3% and 14%,
// and the loop needed 7.4%, 5.9% and 8.2% (seeds 1-3) against 3.3%, 5.3% and 6.0% with every 4th only.
// docs/benchmarks.md gives both measurements.

export interface FineTuneRule {
  /** The first fine-tune, once this many masks are corrected (0: none apart from `every`). */
  firstAfter: number;
  /** Then after every this many corrected masks (counted from the first image). */
  every: number;
}

/** The rule for frames of a sequence (the editor's default: `maskloop.followNeighbours`). */
export const DEFAULT_FINE_TUNE_RULE: FineTuneRule = { firstAfter: 2, every: 4 };

/** The rule for unrelated images (following neighbours turned off; `simulate` without `--sequence`). */
export const UNRELATED_FINE_TUNE_RULE: FineTuneRule = { firstAfter: 0, every: 4 };

/** The rule for a folder whose images are frames of a sequence (`sequence`) or unrelated. */
export function fineTuneRuleFor(sequence: boolean): FineTuneRule {
  return sequence ? DEFAULT_FINE_TUNE_RULE : UNRELATED_FINE_TUNE_RULE;
}

/** Whether a fine-tune is due once the n-th mask is corrected (n counts every corrected mask, from 1). */
export function fineTuneDue(n: number, rule: FineTuneRule = DEFAULT_FINE_TUNE_RULE): boolean {
  if (!Number.isInteger(n) || n < 1) return false;
  return n % rule.every === 0 || (rule.firstAfter > 0 && n === rule.firstAfter);
}

/**
 * The last count in (from, to] at which a fine-tune was due, else null: when several masks are saved at once
 * (Save All), the count can step over a due count.
 */
export function lastDueWithin(from: number, to: number, rule: FineTuneRule = DEFAULT_FINE_TUNE_RULE): number | null {
  for (let n = Math.floor(to); n > from && n >= 1; n--) if (fineTuneDue(n, rule)) return n;
  return null;
}
