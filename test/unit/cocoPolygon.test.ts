import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { cocoPolygonCounts } from '../../src/formats/cocoPolygon';
import { cocoToMasks } from '../../src/formats/coco';
import { decodeRle } from '../../src/formats/cocoRle';

interface Fixture {
  height: number;
  width: number;
  cases: { polygon: number[]; counts: number[] }[];
}

// Made by pycocotools' own rleFrPoly (test/fixtures/coco/README.md says how).
const fixture = JSON.parse(
  fs.readFileSync(path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'coco', 'polygons.json'), 'utf8'),
) as Fixture;

test('COCO polygons give exactly the run lengths pycocotools gives (90 polygons)', () => {
  assert.equal(fixture.cases.length, 90);
  for (const [k, c] of fixture.cases.entries())
    assert.deepEqual(
      cocoPolygonCounts(c.polygon, fixture.height, fixture.width),
      c.counts,
      `polygon ${k}: ${JSON.stringify(c.polygon)}`,
    );
});

test("COCO import paints each annotation's polygons as pycocotools does, and their union", () => {
  const [a, b] = [fixture.cases[5], fixture.cases[70]];
  const dataset = {
    images: [{ id: 1, file_name: 'x.png', width: fixture.width, height: fixture.height }],
    categories: [{ id: 1, name: 'thing' }],
    annotations: [{ id: 1, image_id: 1, category_id: 1, segmentation: [a.polygon, b.polygon], iscrowd: 0 }],
  };
  const { masks, skipped } = cocoToMasks(dataset, 'x.json', [
    { index: 0, name: '_background_', color: '#000000' },
    { index: 1, name: 'thing', color: '#ff0000' },
  ]);
  assert.deepEqual(skipped, []);
  const expected = new Uint8Array(fixture.width * fixture.height);
  for (const c of [a, b])
    decodeRle({ size: [fixture.height, fixture.width], counts: c.counts }).forEach((v, i) => {
      if (v) expected[i] = 1;
    });
  assert.ok(
    expected.some((v) => v),
    'the two polygons cover pixels',
  );
  assert.deepEqual(masks[0].mask.data, expected);
});
