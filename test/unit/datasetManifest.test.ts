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

test('a first fine-tune on 4 masks or more keeps its 4th for validation; on 2 or 3 all train', () => {
  const four = emptyManifest(0.2);
  const s4 = assignSplits(four, ['a.png', 'b.png', 'c.png', 'd.png']);
  assert.deepEqual(
    ['a.png', 'b.png', 'c.png', 'd.png'].map((n) => s4.get(n)),
    ['train', 'train', 'train', 'validation'],
  );
  const many = emptyManifest(0.2);
  const names = Array.from({ length: 12 }, (_, i) => `f_${i}.png`);
  const s12 = assignSplits(many, names);
  assert.deepEqual(
    names.slice(0, 4).map((n) => s12.get(n)),
    ['train', 'train', 'train', 'validation'],
  );
  // An early first fine-tune (2 masks) trains on both, and the next images keep the rule of the first 4.
  const early = emptyManifest(0.2);
  const s2 = assignSplits(early, ['a.png', 'b.png']);
  assert.deepEqual([s2.get('a.png'), s2.get('b.png')], ['train', 'train']);
  const then = assignSplits(early, ['a.png', 'b.png', 'c.png', 'd.png']);
  assert.deepEqual([then.get('c.png'), then.get('d.png')], ['train', 'train']);
  assert.equal(assignSplits(early, ['e.png']).get('e.png'), 'validation');
  // The same image named twice in one call counts once.
  const twice = emptyManifest(0.2);
  const s3 = assignSplits(twice, ['a.png', 'b.png', 'c.png', 'c.png']);
  assert.equal(s3.get('c.png'), 'train', 'three distinct images: all train');
});
