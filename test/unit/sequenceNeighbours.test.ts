import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  framePosition,
  framesAsked,
  pickNeighbours,
  planPropagation,
  reviewedNeighbours,
  sequenceFrames,
} from '../../src/extension/editor/sequenceNeighbours';
import { naturalCompare } from '../../src/masks/naturalOrder';
import { DEFAULT_MASK_TEMPLATE } from '../../src/extension/editor/maskPath';

test('frames sort in natural order: frame_2 before frame_10, case aside', () => {
  assert.deepEqual(['frame_10.png', 'Frame_2.png', 'frame_1.png', 'frame_02b.png'].sort(naturalCompare), [
    'frame_1.png',
    'Frame_2.png',
    'frame_02b.png',
    'frame_10.png',
  ]);
});

test('a frame follows the reviewed frame before it (and the one before that), else the one after', () => {
  const reviewedSet = (s: number[]) => (i: number) => s.includes(i);
  assert.deepEqual(pickNeighbours(10, 5, reviewedSet([3, 4])), [4, 3]);
  assert.deepEqual(pickNeighbours(10, 5, reviewedSet([2, 4])), [4], 'the one beyond is not reviewed');
  assert.deepEqual(pickNeighbours(10, 5, reviewedSet([3, 6, 7])), [6, 7], 'the one before is not: the next');
  assert.deepEqual(pickNeighbours(10, 0, reviewedSet([1])), [1], 'the first frame');
  assert.deepEqual(pickNeighbours(10, 9, reviewedSet([8, 7])), [8, 7], 'the last frame');
  assert.deepEqual(pickNeighbours(10, 5, reviewedSet([3, 7])), [], 'no reviewed neighbour');
  assert.deepEqual(pickNeighbours(10, 5, reviewedSet([0, 1, 3, 4])), [4, 3], 'the run stops at the first gap');
  assert.deepEqual(
    pickNeighbours(30, 20, () => true),
    [19, 18, 17, 16, 15, 14, 13, 12, 11, 10],
    'at most ten (MAX_NEIGHBOURS)',
  );
  assert.deepEqual(
    pickNeighbours(30, 20, () => true, 3),
    [19, 18, 17],
  );
  assert.deepEqual(pickNeighbours(10, 2, reviewedSet([1, 0, 3, 4, 5])), [1, 0], 'before comes first');
  assert.deepEqual(
    pickNeighbours(1, 0, () => true),
    [],
    'a single image',
  );
});

test('reviewed neighbours are found on disk beside the image, masks and suggestions aside', async () => {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'maskloop-seq-'));
  try {
    for (const n of [
      'f1.png',
      'f2.png',
      'f10.png',
      'f11.jpg',
      'notes.txt',
      'f2.mask.png',
      'f10.mask.png',
      'f11.suggestion.png',
    ])
      await fs.promises.writeFile(path.join(dir, n), '');
    const at = (n: string) => path.join(dir, n);
    // f11 follows f10 (reviewed), then f2 (reviewed): f1 < f2 < f10 < f11 in natural order.
    assert.deepEqual(await reviewedNeighbours(at('f11.jpg'), DEFAULT_MASK_TEMPLATE, dir), [
      { image: at('f10.png'), mask: at('f10.mask.png') },
      { image: at('f2.png'), mask: at('f2.mask.png') },
    ]);
    // f1: nothing before it; the next, f2, is reviewed, and f10 after it too.
    assert.deepEqual(await reviewedNeighbours(at('f1.png'), DEFAULT_MASK_TEMPLATE, dir), [
      { image: at('f2.png'), mask: at('f2.mask.png') },
      { image: at('f10.png'), mask: at('f10.mask.png') },
    ]);
    assert.deepEqual(await reviewedNeighbours(at('missing.png'), DEFAULT_MASK_TEMPLATE, dir), []);
    // The sequence and a frame's place in it: masks, suggestions and other files are no frames.
    assert.deepEqual(await sequenceFrames(at('f2.png'), DEFAULT_MASK_TEMPLATE), [
      at('f1.png'),
      at('f2.png'),
      at('f10.png'),
      at('f11.jpg'),
    ]);
    assert.deepEqual(await framePosition(at('f10.png'), DEFAULT_MASK_TEMPLATE), { index: 2, count: 4 });
    assert.equal(await framePosition(at('missing.png'), DEFAULT_MASK_TEMPLATE), null);
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
});

test('a propagation suggests the next n unreviewed frames, each following the one before, with the last reviewed pair as the track record', () => {
  const reviewedSet = (s: number[]) => (i: number) => s.includes(i);
  // Frames 0-9; 3 and 4 reviewed: from 4, frames 5, 6, 7 follow 4, 5, 6; the record is 3 carried onto 4.
  assert.deepEqual(planPropagation(10, 4, 3, reviewedSet([3, 4])), [
    { frame: 5, follows: 4, record: [4, 3] },
    { frame: 6, follows: 5, record: [4, 3] },
    { frame: 7, follows: 6, record: [4, 3] },
  ]);
  // A reviewed frame on the way is not suggested and does not count; the chain goes on from its mask, and
  // a reviewed pair there (7 and 8) becomes the record.
  assert.deepEqual(planPropagation(10, 4, 3, reviewedSet([4, 7, 8])), [
    { frame: 5, follows: 4, record: null },
    { frame: 6, follows: 5, record: null },
    { frame: 9, follows: 8, record: [8, 7] },
  ]);
  assert.deepEqual(planPropagation(10, 8, 5, reviewedSet([8])), [{ frame: 9, follows: 8, record: null }], 'the end');
  assert.deepEqual(
    planPropagation(10, 9, 5, () => true),
    [],
    'the last frame',
  );
  assert.equal(framesAsked(' 12 '), 12);
  for (const bad of ['0', '-1', '2.5', 'many', '', '10001']) assert.equal(typeof framesAsked(bad), 'string', bad);
});
