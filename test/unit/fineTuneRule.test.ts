import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_FINE_TUNE_RULE,
  fineTuneDue,
  fineTuneRuleFor,
  lastDueWithin,
  UNRELATED_FINE_TUNE_RULE,
} from '../../src/engine/training/fineTuneRule';

test('a fine-tune is due at the 2nd corrected mask, then at every 4th', () => {
  const due = Array.from({ length: 13 }, (_, n) => n).filter((n) => fineTuneDue(n));
  assert.deepEqual(due, [2, 4, 8, 12]);
  assert.deepEqual(DEFAULT_FINE_TUNE_RULE, { firstAfter: 2, every: 4 });
});

test('frames of a sequence get the early first fine-tune; unrelated images every 4th only', () => {
  const upTo = (sequence: boolean) =>
    Array.from({ length: 13 }, (_, n) => n).filter((n) => fineTuneDue(n, fineTuneRuleFor(sequence)));
  assert.deepEqual(upTo(true), [2, 4, 8, 12]);
  assert.deepEqual(upTo(false), [4, 8, 12]);
  assert.deepEqual(fineTuneRuleFor(true), DEFAULT_FINE_TUNE_RULE);
  assert.deepEqual(fineTuneRuleFor(false), UNRELATED_FINE_TUNE_RULE);
  // The reminder of a folder of unrelated images: the 2nd mask asks nothing, Save All from 3 to 5 asks at 4.
  assert.equal(lastDueWithin(1, 2, fineTuneRuleFor(false)), null);
  assert.equal(lastDueWithin(1, 2, fineTuneRuleFor(true)), 2);
  assert.equal(lastDueWithin(3, 5, fineTuneRuleFor(false)), 4);
});

test('other rules: no early fine-tune, an early one past the first period, every image', () => {
  const upTo = (rule: { firstAfter: number; every: number }) =>
    Array.from({ length: 10 }, (_, n) => n).filter((n) => fineTuneDue(n, rule));
  assert.deepEqual(upTo({ firstAfter: 0, every: 4 }), [4, 8]);
  assert.deepEqual(upTo({ firstAfter: 5, every: 3 }), [3, 5, 6, 9]);
  assert.deepEqual(upTo({ firstAfter: 2, every: 1 }), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  for (const n of [-1, 0, 2.5, Number.NaN]) assert.equal(fineTuneDue(n), false, String(n));
});

test('masks saved at once can step over a due count; the last one stepped over is found', () => {
  assert.equal(lastDueWithin(1, 2), 2);
  assert.equal(lastDueWithin(3, 5), 4, 'Save All took the count from 3 to 5');
  assert.equal(lastDueWithin(1, 9), 8);
  assert.equal(lastDueWithin(4, 7), null);
  assert.equal(lastDueWithin(5, 5), null, 'nothing new');
  assert.equal(lastDueWithin(0, 1), null);
});
