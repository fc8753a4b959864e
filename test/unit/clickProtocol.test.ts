import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  clickObjects,
  clicksToReach,
  nextClick,
  objectIoU,
  polygonVertices,
  suggestedRegion,
  summariseClicks,
  type ClickRecord,
} from '../../src/engine/click/clickProtocol';

/** A w x h plane with the rectangle [x0, x1) x [y0, y1) set. */
function rect(w: number, h: number, x0: number, y0: number, x1: number, y1: number): Uint8Array {
  const m = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) m.fill(1, y * w + x0, y * w + x1);
  return m;
}

test('objects: every connected region of every class with enough pixels, ignore left out', () => {
  const data = new Uint8Array(20 * 10);
  data.set(rect(20, 10, 0, 0, 6, 10).map((v) => v * 1));
  for (let i = 0; i < data.length; i++) if (i % 20 >= 15) data[i] = 255;
  data[9 * 20 + 10] = 2; // one pixel of class 2: too small
  const found = clickObjects({ width: 20, height: 10, data }, 5);
  assert.deepEqual(
    found.map((o) => [o.classIndex, o.area]),
    [
      [1, 60],
      [0, 89],
    ],
  );
});

test('the first click is at the innermost pixel of the object; then the deeper error decides the sign', () => {
  const w = 30;
  const h = 20;
  const object = rect(w, h, 2, 2, 22, 14); // 20 x 12
  // The first of the pixels farthest inside (6 pixels from the outside), at its centre, as RITM's protocol takes it.
  assert.deepEqual(nextClick(object, null, null, w, h), { x: 7.5, y: 7.5, positive: true });
  // The prediction took the object and a 10 x 10 block beside it: the false positive block is deeper.
  const pred = object.slice();
  for (let y = 5; y < 15; y++) pred.fill(1, y * w + 22, y * w + 30);
  const second = nextClick(object, pred, null, w, h);
  assert.equal(second?.positive, false);
  assert.ok(second!.x > 22, `in the false positives: ${second!.x}`);
  // Ignored pixels are no error.
  const ignore = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) ignore.fill(1, y * w + 22, y * w + 30);
  assert.equal(nextClick(object, pred, ignore, w, h), null);
  assert.equal(objectIoU(object, pred, ignore), 1);
  assert.ok(Math.abs(objectIoU(object, pred, null) - 240 / (240 + 80)) < 1e-9);
});

test('NoC counts the click that first reached the IoU, capped; a rectangle needs 4 polygon vertices', () => {
  assert.equal(clicksToReach([0.5, 0.86, 0.8, 0.95], 0.85, 20), 2);
  assert.equal(clicksToReach([0.5, 0.86, 0.8, 0.95], 0.9, 20), 4);
  assert.equal(clicksToReach([0.5, 0.6], 0.85, 20), 20);
  assert.equal(polygonVertices(rect(30, 20, 3, 4, 25, 15), 30, 20, 0.9), 4);
  // A disc needs more vertices for 0.9 than for 0.85.
  const disc = new Uint8Array(60 * 60);
  for (let y = 0; y < 60; y++)
    for (let x = 0; x < 60; x++) if ((x - 29.5) ** 2 + (y - 29.5) ** 2 < 400) disc[y * 60 + x] = 1;
  const v85 = polygonVertices(disc, 60, 60, 0.85);
  const v90 = polygonVertices(disc, 60, 60, 0.9);
  assert.ok(v85 >= 4 && v85 <= v90, `${v85} <= ${v90}`);
});

test("the suggestion's region under a click: the connected region of the object's class there, or none", () => {
  const data = new Uint8Array(10 * 4);
  data.fill(2, 0, 3); // row 0, x 0-2
  data.fill(2, 7, 10); // row 0, x 7-9: the same class, not connected
  const map = { width: 10, height: 4, data };
  const region = suggestedRegion(map, 2, { x: 1.5, y: 0.5 });
  assert.deepEqual(Array.from(region ?? []).slice(0, 10), [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(suggestedRegion(map, 1, { x: 1.5, y: 0.5 }), null, 'the model says another class there');
});

test('click summary: never-reached shares, the clicks of those that reach, and the floor they put under NoC', () => {
  const cap = 20;
  const record = (ious: number[]): ClickRecord => ({
    ious,
    noc85: clicksToReach(ious, 0.85, cap),
    noc90: clicksToReach(ious, 0.9, cap),
    polygon85: 10,
    polygon90: 20,
  });
  const list = [
    record([0.91]), // both at once
    record([0.5, 0.86, 0.88, 0.93]), // 0.85 with the 2nd, 0.90 with the 4th
    record(Array.from({ length: cap }, () => 0.87)), // 0.85 at once, never 0.90
    record(Array.from({ length: cap }, () => 0.7)), // neither
  ];
  const s = summariseClicks(list, cap);
  assert.equal(s.objects, 4);
  assert.equal(s.noc85, (1 + 2 + 1 + 20) / 4);
  assert.equal(s.noc90, (1 + 4 + 20 + 20) / 4);
  assert.equal(s.failed85, 1 / 4);
  assert.equal(s.failed90, 2 / 4);
  assert.equal(s.reached85, (1 + 2 + 1) / 3);
  assert.equal(s.reached90, (1 + 4) / 2);
  // Every object that reaches doing it with one click: 0.25 x 20 + 0.75, 0.5 x 20 + 0.5.
  assert.equal(s.floor85, 5.75);
  assert.equal(s.floor90, 10.5);
  assert.ok(s.noc85 >= s.floor85 && s.noc90 >= s.floor90);
  assert.equal(s.polygon85, 10);
  // An IoU reached exactly with the last allowed click counts as reached (NoC = cap), not failed.
  const last = summariseClicks([record([...Array.from({ length: cap - 1 }, () => 0.5), 0.95])], cap);
  assert.equal(last.failed90, 0);
  assert.equal(last.reached90, cap);
  assert.equal(last.floor90, 1);
  const none = summariseClicks([], cap);
  assert.equal(none.objects, 0);
  assert.equal(none.reached85, null);
  assert.equal(none.floor90, 0);
});
