import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignSplits, emptyManifest } from '../../src/engine/datasetManifest';

test('splits are fixed once assigned and the first image trains', () => {
  const m = emptyManifest(0.2);
  const first = assignSplits(m, ['a.png']);
  assert.equal(first.get('a.png'), 'train');
  const second = assignSplits(m, ['a.png', 'b.png']);
  assert.equal(second.get('b.png'), 'validation', 'an empty validation set takes the second image');
  const names = Array.from({ length: 50 }, (_, i) => `img_${i}.png`);
  const all = assignSplits(m, names);
  const again = assignSplits(JSON.parse(JSON.stringify(m)), [...names].reverse());
  for (const n of names) assert.equal(again.get(n), all.get(n), `${n} must not move`);
  const val = names.filter((n) => all.get(n) === 'validation').length;
  assert.ok(val > 2 && val < 25, `about 20% validation, got ${val}/50`);
});
