// When a fine-tune is due in the labelling loop: as soon as two corrected masks exist, then after every 4th.
// The editor reminds the person by this rule (extension/fineTuneReminder.ts) and `maskloop simulate` follows it
// by default, so the loop measured is the loop a person is led through. Why two: with fine-tunes only after
// every 4th image, the 3rd and 4th images are suggested by an untrained model and cost about what an empty
// suggestion costs (street-1hz 66-68% of pixels to change, EM sections 21-26%); a first fine-tune on two masks
// brought the real sets' loops (each image alone, second halves) from 23.1% to 17.2% (street-1hz), from 15.1% to
// 5.8% (street-15hz) and from 13.6% to 10.5% (EM membranes): docs/benchmarks.md.

export interface FineTuneRule {
  /** The first fine-tune, once this many masks are corrected (0: none apart from `every`). */
  firstAfter: number;
  /** Then after every this many corrected masks (counted from the first image). */
  every: number;
}

export const DEFAULT_FINE_TUNE_RULE: FineTuneRule = { firstAfter: 2, every: 4 };

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
