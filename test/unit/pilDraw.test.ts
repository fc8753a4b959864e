import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  pilFillEllipse,
  pilFillPolygon,
  pilFillRectangle,
  pilWideLine,
  type PillowVariant,
} from '../../src/formats/pilDraw';
import type { MaskImage } from '../../src/masks/maskImage';

interface Fixture {
  pillow: string;
  width: number;
  height: number;
  cases: {
    kind: 'polygon' | 'rectangle' | 'circle' | 'point' | 'line' | 'linestrip';
    points: [number, number][];
    runs: number[];
  }[];
}

// Drawn by Pillow 9.4.0 itself (test/fixtures/pil/make-fixtures.py says how).
const fixture = JSON.parse(
  fs.readFileSync(path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'pil', 'polygons.json'), 'utf8'),
) as Fixture;

function fromRuns(runs: number[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let at = 0;
  runs.forEach((r, i) => {
    if (i % 2 === 1) out.fill(1, at, at + r);
    at += r;
  });
  return out;
}

function draw(c: Fixture['cases'][number], variant: PillowVariant): MaskImage {
  const mask = { width: fixture.width, height: fixture.height, data: new Uint8Array(fixture.width * fixture.height) };
  const pts = c.points.map(([x, y]) => ({ x, y }));
  // As labelme's shape_to_mask draws each shape type.
  if (c.kind === 'polygon') pilFillPolygon(mask, pts, 1, variant);
  else if (c.kind === 'rectangle') pilFillRectangle(mask, pts[0], pts[1], 1);
  else if (c.kind === 'circle') {
    const d = Math.sqrt((pts[0].x - pts[1].x) ** 2 + (pts[0].y - pts[1].y) ** 2);
    pilFillEllipse(mask, { x0: pts[0].x - d, y0: pts[0].y - d, x1: pts[0].x + d, y1: pts[0].y + d }, 1);
  } else if (c.kind === 'point')
    pilFillEllipse(mask, { x0: pts[0].x - 5, y0: pts[0].y - 5, x1: pts[0].x + 5, y1: pts[0].y + 5 }, 1);
  else pilWideLine(mask, pts, 10, 1, variant);
  return mask;
}

test("labelme's shapes fill exactly the pixels Pillow 9.4 fills (184 polygons, rectangles, circles, points, lines)", () => {
  assert.equal(fixture.pillow, '9.4.0');
  assert.equal(fixture.cases.length, 184);
  assert.deepEqual([...new Set(fixture.cases.map((c) => c.kind))].sort(), [
    'circle',
    'line',
    'linestrip',
    'point',
    'polygon',
    'rectangle',
  ]);
  let filled = 0;
  for (const [k, c] of fixture.cases.entries()) {
    const want = fromRuns(c.runs, fixture.width * fixture.height);
    const got = draw(c, 'pillow9').data;
    const differ: string[] = [];
    for (let i = 0; i < want.length; i++)
      if (want[i] !== got[i]) differ.push(`${i % fixture.width},${Math.floor(i / fixture.width)}`);
    assert.deepEqual(differ, [], `case ${k} (${c.kind} ${JSON.stringify(c.points)}): pixels that differ from Pillow`);
    filled += want.reduce((a, v) => a + v, 0);
  }
  assert.ok(filled > 10000, 'the shapes cover many pixels');
});

test('current Pillow differs from 9.4 only in how it joins corners: most shapes are the same, and every shape nearly', () => {
  let same = 0;
  for (const c of fixture.cases) {
    const a = draw(c, 'pillow9').data;
    const b = draw(c, 'pillow12').data;
    let diff = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) diff++;
    if (diff === 0) same++;
    assert.ok(diff <= 4 * c.points.length, `${JSON.stringify(c.points)}: ${diff} pixels differ`);
  }
  assert.ok(same > fixture.cases.length / 2, `${same} of ${fixture.cases.length} identical`);
});

test('a polygon fill includes its edge pixels: a square of corners (2,3)-(6,7) covers 5 x 5 pixels', () => {
  const mask = { width: 10, height: 10, data: new Uint8Array(100) };
  pilFillPolygon(
    mask,
    [
      { x: 2, y: 3 },
      { x: 6, y: 3 },
      { x: 6, y: 7 },
      { x: 2, y: 7 },
    ],
    4,
  );
  assert.equal(mask.data.filter((v) => v === 4).length, 25);
  assert.equal(mask.data[3 * 10 + 6], 4);
  assert.equal(mask.data[7 * 10 + 2], 4);
  // Vertices are truncated: 2.9 is column 2.
  const t = { width: 10, height: 10, data: new Uint8Array(100) };
  pilFillRectangle(t, { x: 6.99, y: 7.99 }, { x: 2.9, y: 3.2 }, 1);
  assert.deepEqual(
    t.data,
    mask.data.map((v) => (v ? 1 : 0)),
    'corners in either order, truncated',
  );
});
