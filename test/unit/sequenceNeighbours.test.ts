import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { pickNeighbours, reviewedNeighbours } from '../../src/extension/editor/sequenceNeighbours';
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
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
});
