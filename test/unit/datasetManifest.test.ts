import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignSplits, emptyManifest, TRAIN_BEFORE_VALIDATION } from '../../src/engine/training/datasetManifest';

test('splits are fixed once assigned and the first images train', () => {
  const m = emptyManifest(0.2);
  const first = assignSplits(m, ['a.png']);
  assert.equal(first.get('a.png'), 'train');
  const early = ['b.png', 'c.png', 'd.png'];
  const second = assignSplits(m, ['a.png', ...early]);
  assert.equal(TRAIN_BEFORE_VALIDATION, 4);
  for (const n of early)
    assert.equal(second.get(n), 'train', `${n}: the first ${TRAIN_BEFORE_VALIDATION} images all train`);
  const fifth = assignSplits(m, ['e.png']);
  assert.equal(fifth.get('e.png'), 'validation', 'an empty validation set takes the next image');
  const names = Array.from({ length: 50 }, (_, i) => `img_${i}.png`);
  const all = assignSplits(m, names);
  const again = assignSplits(JSON.parse(JSON.stringify(m)), [...names].reverse());
  for (const n of names) assert.equal(again.get(n), all.get(n), `${n} must not move`);
  const val = names.filter((n) => all.get(n) === 'validation').length;
  assert.ok(val > 2 && val < 25, `about 20% validation, got ${val}/50`);
});
