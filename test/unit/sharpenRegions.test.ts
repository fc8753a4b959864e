import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyRedrawn, closestCandidate, maskIoU, proposeRegions } from '../../src/tools/sharpenRegions';
import type { MaskImage } from '../../src/masks/maskImage';

function rect(w: number, h: number, x0: number, y0: number, x1: number, y1: number): Uint8Array {
  const m = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) m.fill(1, y * w + x0, y * w + x1);
  return m;
}

function classMap(w: number, h: number, parts: [number, Uint8Array][]): MaskImage {
  const data = new Uint8Array(w * h);
  for (const [c, m] of parts) for (let i = 0; i < m.length; i++) if (m[i]) data[i] = c;
  return { width: w, height: h, data };
}

test('proposals: regions within the size limits, largest first, with their boxes', () => {
  const map = classMap(20, 10, [
    [1, rect(20, 10, 2, 2, 6, 6)],
    [2, rect(20, 10, 10, 1, 13, 3)],
    [255, rect(20, 10, 15, 5, 20, 10)],
  ]);
  const found = proposeRegions(map, { minArea: 5, maxShare: 0.5 });
  // Background (200 - 16 - 6 - 25 = 153 pixels) is over half the image; the ignore block is never proposed.
  assert.deepEqual(
    found.map((r) => [r.classIndex, r.area, r.box]),
    [
      [1, 16, { x0: 2, y0: 2, x1: 6, y1: 6 }],
      [2, 6, { x0: 10, y0: 1, x1: 13, y1: 3 }],
    ],
  );
  assert.equal(proposeRegions(map, { minArea: 10, maxShare: 1 }).length, 2);
});

test('the closest candidate is the one that agrees most with the region', () => {
  const region = rect(10, 10, 2, 2, 6, 6);
  const near = rect(10, 10, 2, 2, 6, 7);
  const far = rect(10, 10, 0, 0, 10, 10);
  const best = closestCandidate(region, [{ mask: far }, { mask: near }]);
  assert.equal(best?.mask, near);
  assert.equal(best?.iou, 16 / 20);
  assert.equal(maskIoU(region, far), 16 / 100);
});

test('a redrawn edge moves within the band: added pixels take the class, taken ones the class around', () => {
  // Class 1 square [4, 10) on a background of 0 at the left and 3 at the right (x >= 10).
  const map = classMap(16, 12, [
    [3, rect(16, 12, 10, 0, 16, 12)],
    [1, rect(16, 12, 4, 2, 10, 8)],
  ]);
  const region = proposeRegions(map, { minArea: 1, maxShare: 0.5 }).find((r) => r.classIndex === 1)!;
  // Redrawn: one column narrower at the right (x = 9 taken), one row taller at the bottom (y = 8 added), and a
  // far blob at (0, 11) that is outside the band.
  const redrawn = rect(16, 12, 4, 2, 9, 9);
  redrawn[11 * 16] = 1;
  const changed = applyRedrawn(map, region, redrawn, 2);
  for (let y = 2; y < 8; y++) assert.equal(map.data[y * 16 + 9], 3, `x 9, y ${y} takes the class at its right`);
  for (let x = 4; x < 9; x++) assert.equal(map.data[8 * 16 + x], 1, `x ${x}, y 8 is added`);
  assert.equal(map.data[11 * 16], 0, 'outside the band nothing changes');
  assert.equal(changed, 6 + 5);
  // A band that reaches the blob takes it too.
  const again = classMap(16, 12, [
    [3, rect(16, 12, 10, 0, 16, 12)],
    [1, rect(16, 12, 4, 2, 10, 8)],
  ]);
  applyRedrawn(again, region, redrawn, 20);
  assert.equal(again.data[11 * 16], 1);
});
