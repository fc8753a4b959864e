import assert from 'node:assert/strict';
import { test } from 'node:test';
import { honourClicks } from '../../src/engine/click/honourClicks';
import type { RgbImage } from '../../src/masks/maskImage';

/** A w x h grey image: `value(x, y)` in all three channels. */
function grey(w: number, h: number, value: (x: number, y: number) => number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.fill(value(x, y), (y * w + x) * 3, (y * w + x) * 3 + 3);
  return { width: w, height: h, data };
}

const count = (m: Uint8Array): number => m.reduce((n, v) => n + v, 0);

test('a click the answer agrees with changes nothing: the same array comes back', () => {
  const image = grey(20, 10, () => 100);
  const answer = new Uint8Array(200);
  answer[5 * 20 + 5] = 1;
  const out = honourClicks(
    answer,
    image,
    [
      { x: 5.5, y: 5.5, positive: true },
      { x: 15, y: 2, positive: false },
    ],
    {
      radius: 3,
      tolerance: 10,
    },
  );
  assert.equal(out, answer);
});

test('an ignored positive click adds the disc of its colour around it; the answer given is not changed', () => {
  // Left half dark (40), right half light (200); the click at (8, 5) on the dark side, 2 pixels from the edge.
  const image = grey(20, 10, (x) => (x < 10 ? 40 : 200));
  const answer = new Uint8Array(200);
  const out = honourClicks(answer, image, [{ x: 8.5, y: 5.5, positive: true }], { radius: 3, tolerance: 10 });
  assert.equal(count(answer), 0);
  // The disc of radius 3 about (8, 5), x <= 9 only, by hand: dy = 0: x 5..9 (5); dy = +-1: 6..9 (4 each, |dx| <=
  // 2.8); dy = +-2: 6..9 (4 each, |dx| <= 2.2); dy = +-3: x = 8 (1 each): 5 + 8 + 8 + 2 = 23.
  assert.equal(count(out), 23);
  for (let y = 0; y < 10; y++) for (let x = 10; x < 20; x++) assert.equal(out[y * 20 + x], 0, `light pixel ${x},${y}`);
  assert.equal(out[5 * 20 + 5], 1);
  assert.equal(out[5 * 20 + 4], 0, 'beyond the radius');
});

test('an ignored negative click removes only the connected pixels of its colour', () => {
  // A bright ring (x = 5) cuts the dark disc: the flood does not cross it, though the far side is close in colour.
  const image = grey(12, 12, (x) => (x === 5 ? 250 : 30));
  const answer = new Uint8Array(144).fill(1);
  const out = honourClicks(answer, image, [{ x: 3, y: 6, positive: false }], { radius: 4, tolerance: 20 });
  assert.equal(out[6 * 12 + 3], 0);
  assert.equal(out[6 * 12 + 0], 0, '3 pixels left, inside the disc');
  assert.equal(out[6 * 12 + 5], 1, 'the bright column stays');
  assert.equal(out[6 * 12 + 6], 1, 'beyond the bright column, though within the radius');
  assert.equal(out[1 * 12 + 3], 1, '5 rows up: beyond the radius');
});

test('later clicks win where two honoured regions meet', () => {
  const image = grey(10, 1, () => 80);
  const answer = new Uint8Array(10);
  answer[6] = 1;
  // A positive click at 2 (ignored) then a negative one at 6 (ignored): 0-5 on (radius 3 from 2 -> 0..5), then
  // 3-9 off (radius 3 from 6 -> 3..9).
  const out = honourClicks(
    answer,
    image,
    [
      { x: 2, y: 0, positive: true },
      { x: 6, y: 0, positive: false },
    ],
    { radius: 3, tolerance: 0 },
  );
  assert.deepEqual([...out], [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
});
