import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cropFlat,
  cropRgb,
  extentOf,
  insideBox,
  moveLogits,
  pasteFlat,
  zoomBox,
  zoomCropFor,
  type ZoomSettings,
} from '../../src/engine/click/zoomCrop';

const S: ZoomSettings = { expand: 2.5, minSide: 40, maxShare: 0.5 };

/** A w x h mask with a rectangle [x0, x1) x [y0, y1) set. */
function rect(w: number, h: number, x0: number, y0: number, x1: number, y1: number): Uint8Array {
  const m = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) m.fill(1, y * w + x0, y * w + x1);
  return m;
}

test('the extent of a mask and of clicks outside it', () => {
  const m = rect(100, 60, 20, 10, 30, 15);
  assert.deepEqual(extentOf(m, 100, 60, []), { x0: 20, y0: 10, x1: 30, y1: 15 });
  assert.deepEqual(extentOf(m, 100, 60, [{ x: 40.5, y: 5.5 }]), { x0: 20, y0: 5, x1: 41, y1: 15 });
  assert.deepEqual(extentOf(null, 100, 60, [{ x: 100, y: 60 }]), { x0: 99, y0: 59, x1: 100, y1: 60 }, 'clamped');
  assert.equal(extentOf(new Uint8Array(6000), 100, 60, []), null);
});

test('the zoom crop: the extent enlarged about its centre, at least minSide, moved inside, none when too large', () => {
  // 20 x 10 extent centred at (50, 30): 50 x 25 -> 50 x 40 (minSide), centred.
  assert.deepEqual(zoomBox({ x0: 40, y0: 25, x1: 60, y1: 35 }, 200, 120, S), { x0: 25, y0: 10, x1: 75, y1: 50 });
  // At the image's corner it is moved inside, keeping its size.
  assert.deepEqual(zoomBox({ x0: 0, y0: 0, x1: 20, y1: 20 }, 200, 120, S), { x0: 0, y0: 0, x1: 50, y1: 50 });
  assert.deepEqual(zoomBox({ x0: 185, y0: 110, x1: 200, y1: 120 }, 200, 120, S), {
    x0: 160,
    y0: 80,
    x1: 200,
    y1: 120,
  });
  // More than half the image: not worth a zoom.
  assert.equal(zoomBox({ x0: 20, y0: 20, x1: 100, y1: 60 }, 200, 120, S), null);
  // A small image: minSide is at most its side.
  assert.deepEqual(zoomBox({ x0: 2, y0: 2, x1: 4, y1: 4 }, 30, 30, { ...S, maxShare: 1 }), {
    x0: 0,
    y0: 0,
    x1: 30,
    y1: 30,
  });
});

test("inside a crop: a margin from its edges, none at the image's edges", () => {
  const box = { x0: 10, y0: 0, x1: 50, y1: 40 };
  assert.ok(insideBox(box, { x: 12.5, y: 20 }, 2, 100, 60));
  assert.ok(!insideBox(box, { x: 11.5, y: 20 }, 2, 100, 60), 'within 2 pixels of the left edge');
  assert.ok(insideBox(box, { x: 12.5, y: 0.5 }, 2, 100, 60), "the top edge is the image's");
  assert.ok(!insideBox(box, { x: 48.5, y: 20 }, 2, 100, 60));
  assert.ok(!insideBox(box, { x: 60, y: 20 }, 0, 100, 60));
});

test('crops of images and masks, and a crop pasted back at its place', () => {
  const image = { width: 4, height: 3, data: Uint8Array.from({ length: 36 }, (_, i) => i) };
  const c = cropRgb(image, { x0: 1, y0: 1, x1: 3, y1: 3 });
  assert.equal(c.width, 2);
  assert.equal(c.height, 2);
  // Pixel (1, 1) of the image is pixel 5: bytes 15-17.
  assert.deepEqual([...c.data], [15, 16, 17, 18, 19, 20, 27, 28, 29, 30, 31, 32]);
  const m = rect(10, 8, 3, 2, 6, 5);
  const box = { x0: 2, y0: 1, x1: 8, y1: 7 };
  const small = cropFlat(m, 10, 8, box);
  assert.equal(small.length, 36);
  assert.deepEqual(pasteFlat(small, box, 10, 8), m);
});

test('which crop a click is answered on', () => {
  const W = 400;
  const H = 300;
  const object = rect(W, H, 100, 100, 120, 116);
  const first = [{ x: 110.5, y: 108.5, positive: true }];
  assert.equal(zoomCropFor(W, H, { points: first }, null, null), null, 'a first click alone: the whole image');
  // The crop ahead, computed from the first answer and click, is used when the next click lies inside it.
  const ahead = zoomCropFor(W, H, { points: first }, object, null);
  assert.ok(ahead);
  const second = [...first, { x: 118.5, y: 114.5, positive: false }];
  assert.deepEqual(zoomCropFor(W, H, { points: second }, object, null), ahead);
  // The crop answered on stays while every click lies well inside it...
  assert.deepEqual(zoomCropFor(W, H, { points: second }, rect(W, H, 0, 0, 1, 1), ahead), ahead);
  // ...and moves to take in a click near or past its edge.
  const far = [...second, { x: ahead.x1 - 1, y: 108.5, positive: true }];
  const moved = zoomCropFor(W, H, { points: far }, object, ahead);
  assert.ok(moved && moved.x1 > ahead.x1, 'moved right');
  assert.ok(insideBox(moved, far[2], 2, W, H));
  // A box alone zooms on the box; a large one does not.
  assert.ok(zoomCropFor(W, H, { points: [], box: { x0: 50, y0: 50, x1: 80, y1: 70 } }, null, null));
  assert.equal(zoomCropFor(W, H, { points: [], box: { x0: 0, y0: 0, x1: 300, y1: 250 } }, null, null), null);
});

test("a decoder's low-resolution logits moved from the whole image onto a crop, and back", () => {
  const M = 16;
  const S = 64;
  // SAM's padded input: the longest side to S.
  const scale = (w: number, h: number) => {
    const s = S / Math.max(w, h);
    return { sx: Math.floor(w * s + 0.5) / w, sy: Math.floor(h * s + 0.5) / h };
  };
  const whole = { x0: 0, y0: 0, x1: 128, y1: 96 };
  // Logits that are each cell centre's image x: 8 image pixels a cell on this 128-pixel image.
  const logits = new Float32Array(M * M);
  for (let i = 0; i < M; i++) for (let j = 0; j < M; j++) logits[i * M + j] = (j + 0.5) * 8;
  assert.deepEqual(
    moveLogits(logits, M, scale, S, whole, whole),
    logits.map((v, k) => (k < 12 * M ? v : -20)),
  );
  // A 32x32 crop at (40, 20): a cell is 2 image pixels there; a linear map is resampled exactly inside.
  const crop = { x0: 40, y0: 20, x1: 72, y1: 52 };
  const moved = moveLogits(logits, M, scale, S, whole, crop);
  for (const j of [2, 7, 12]) assert.ok(Math.abs(moved[5 * M + j] - (40 + (j + 0.5) * 2)) < 1e-4, `cell ${j}`);
  // Back onto the whole image: cells outside the crop are "outside".
  const back = moveLogits(moved, M, scale, S, crop, whole);
  assert.equal(back[0], -20);
  assert.ok(Math.abs(back[5 * M + 6] - 52) < 1e-3, `${back[5 * M + 6]}`);
});
