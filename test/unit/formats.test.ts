import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/masks/seededRandom';
import { test } from 'node:test';
import { cocoMaskSource, cocoToMasks, masksToCoco } from '../../src/formats/coco';
import { decodeRle, encodeRle, rleFromString, rleToString } from '../../src/formats/cocoRle';
import { maskRegions, signedArea, simplifyLoop, traceLoops } from '../../src/formats/contours';
import { classListFromNames } from '../../src/formats/formatTypes';
import { labelmeToMask, maskToLabelme } from '../../src/formats/labelme';
import { encodeVocPng, objectMap } from '../../src/formats/voc';
import { dataYaml, maskToYolo, parseDataYaml, yoloToMask } from '../../src/formats/yolo';
import type { ClassInfo } from '../../src/masks/classList';
import { emptyBox } from '../../src/masks/maskDiff';
import { emptyMask, type MaskImage } from '../../src/masks/maskImage';
import { decodeMaskPng } from '../../src/io/maskIO';
import { fillRings } from '../../src/masks/rasterTools';
import { syntheticSample } from '../../src/synthetic/syntheticShapes';

function mask(rows: string[]): MaskImage {
  const height = rows.length;
  const width = rows[0].length;
  const data = new Uint8Array(width * height);
  // '.' = 0, digits = class, 'x' = ignore (255), letters a.. = 10, 11, ...
  rows.forEach((r, y) =>
    [...r].forEach((ch, x) => {
      data[y * width + x] = ch === '.' ? 0 : ch === 'x' ? 255 : /[a-w]/.test(ch) ? ch.charCodeAt(0) - 87 : Number(ch);
    }),
  );
  return { width, height, data };
}

const CLASSES: ClassInfo[] = [
  { index: 0, name: '_background_', color: '#000000' },
  ...Array.from({ length: 12 }, (_, i) => ({ index: i + 1, name: `c${i + 1}`, color: '#ff0000' })),
];

// Holes (class 1 ring around a class 2 island and an empty hole), regions of different classes touching,
// two class-3 pixels touching only at a corner (two regions), ignore pixels, a class id above 9 ('c' = 12).
const HARD = mask([
  '...........',
  '.11111111..',
  '.1.....11..',
  '.1.222.1133',
  '.1.222.1133',
  '.1.....1...',
  '.111111113.',
  '..........3',
  'xx..ccc....',
  'xx..ccc....',
]);

test('COCO RLE: counts column-major from a zero run; compressed strings as pycocotools writes them (by hand)', () => {
  // 3 rows x 2 columns: column 0 is 0,1,0 and column 1 is 1,1,0.
  const inside = new Uint8Array([0, 1, 1, 1, 0, 0]);
  const rle = encodeRle(inside, 2, 3);
  assert.deepEqual(rle, { size: [3, 2], counts: [1, 1, 1, 2, 1] });
  assert.deepEqual(decodeRle(rle), inside);
  assert.throws(() => decodeRle({ size: [3, 2], counts: [1, 1] }), /cover 2 pixels/);
  // 5 -> '5'; 3 -> '3'; 2 -> '2'.
  assert.equal(rleToString([5, 3, 2]), '532');
  // 40 = 0b01000 + 1<<5: group 8 with the "more" bit (8|32 = 40 -> 'X'), then 1 -> '1'.
  assert.equal(rleToString([40]), 'X1');
  // The fourth count is stored as 1 - 2 = -1: group 31 (sign bit set, no more) -> 'O'.
  assert.equal(rleToString([1, 2, 3, 1]), '123O');
  for (const counts of [[5, 3, 2], [40], [1, 2, 3, 1], [0, 268435456, 7, 1, 268000000, 3], [100, 1, 99, 2, 98, 3]]) {
    assert.deepEqual(rleFromString(rleToString(counts)), counts);
  }
  assert.throws(() => rleFromString('X'), /ends in the middle/);
});

test('contours are exact: outer loops positive, holes negative; refilling gives the same pixels', () => {
  const regions = maskRegions(HARD);
  const byClass = (c: number): number => regions.filter((r) => r.classIndex === c).length;
  assert.equal(byClass(1), 1);
  assert.equal(byClass(3), 3, 'the two 3-pixels touching at a corner are two regions, plus the block on the right');
  assert.equal(byClass(255), 1);
  const ring = regions.find((r) => r.classIndex === 1)!;
  assert.equal(ring.holes.length, 1);
  assert.ok(signedArea(ring.outer) > 0 && signedArea(ring.holes[0]) < 0);
  for (const r of regions) {
    const m = emptyMask(HARD.width, HARD.height);
    fillRings(m, [r.outer, ...r.holes], 1, emptyBox());
    for (let i = 0; i < m.data.length; i++)
      assert.equal(m.data[i], r.selection.inside[i], `class ${r.classIndex} pixel ${i}`);
  }
  // A square's loop has exactly four corners.
  const sq = new Uint8Array(16);
  for (const i of [5, 6, 9, 10]) sq[i] = 1;
  assert.deepEqual(traceLoops(sq, 4, 4), [
    [
      { x: 3, y: 1 },
      { x: 3, y: 3 },
      { x: 1, y: 3 },
      { x: 1, y: 1 },
    ],
  ]);
});

test('mask -> polygons -> mask: IoU 1 at tolerance 0 on generated shapes; simplification keeps IoU high', () => {
  for (let seed = 0; seed < 6; seed++) {
    const { mask: m } = syntheticSample({ width: 96, height: 80, numClasses: 3, seed });
    for (const tol of [0, 1]) {
      const back = emptyMask(m.width, m.height);
      let vertices = 0;
      for (const r of maskRegions(m, tol)) {
        fillRings(back, [r.outer, ...r.holes], r.classIndex, emptyBox());
        vertices += r.outer.length;
      }
      let same = 0;
      for (let i = 0; i < m.data.length; i++) if (m.data[i] === back.data[i]) same++;
      const agreement = same / m.data.length;
      if (tol === 0) assert.equal(agreement, 1, `seed ${seed}: exact at tolerance 0`);
      else assert.ok(agreement > 0.97, `seed ${seed}: ${agreement} at tolerance 1 with ${vertices} vertices`);
    }
  }
  const zigzag = [
    { x: 0, y: 0 },
    { x: 5, y: 0.2 },
    { x: 10, y: 0 },
    { x: 10, y: 10 },
    { x: 5, y: 10.2 },
    { x: 0, y: 10 },
  ];
  assert.equal(simplifyLoop(zigzag, 0.5).length, 4);
});

test('COCO: export then import gives the mask back (ignore is not a COCO annotation); holes travel as RLE', () => {
  const { dataset, ignoredRegions, rleRegions } = masksToCoco([{ imageName: 'a.png', mask: HARD }], CLASSES, {
    tolerance: 0,
    segmentation: 'polygon',
  });
  assert.equal(ignoredRegions, 1);
  assert.equal(rleRegions, 1, 'the ring with a hole');
  assert.ok(dataset.categories.some((c) => c.id === 12 && c.name === 'c12'));
  const ring = dataset.annotations.find((a) => a.category_id === 1)!;
  assert.equal(typeof (ring.segmentation as { counts: unknown }).counts, 'string');
  const json = JSON.parse(JSON.stringify(dataset)) as unknown;
  const { masks, skipped } = cocoToMasks(json, 'a.json', CLASSES);
  assert.deepEqual(skipped, []);
  const expected = HARD.data.map((v) => (v === 255 ? 0 : v));
  assert.deepEqual(masks[0].mask.data, expected);
  const rleOnly = masksToCoco([{ imageName: 'a.png', mask: HARD }], CLASSES, { tolerance: 0, segmentation: 'rle' });
  assert.deepEqual(
    cocoToMasks(JSON.parse(JSON.stringify(rleOnly.dataset)), 'b.json', CLASSES).masks[0].mask.data,
    expected,
  );
});

test('COCO import: uncompressed RLE, polygons, and bad annotations skipped with file and annotation named', () => {
  const json = {
    images: [{ id: 7, file_name: 'img/x.jpg', width: 4, height: 3 }],
    categories: [
      { id: 1, name: 'c1' },
      { id: 2, name: 'c2' },
      { id: 9, name: 'martian' },
    ],
    annotations: [
      { id: 1, image_id: 7, category_id: 1, segmentation: { size: [3, 4], counts: [3, 3, 6] }, iscrowd: 1 },
      { id: 2, image_id: 7, category_id: 2, segmentation: [[3, 0, 4, 0, 4, 3, 3, 3]], iscrowd: 0 },
      { id: 3, image_id: 7, category_id: 9, segmentation: [[0, 0, 1, 0, 1, 1]], iscrowd: 0 },
      { id: 4, image_id: 7, category_id: 1, segmentation: { size: [3, 5], counts: [15] }, iscrowd: 0 },
      { id: 5, image_id: 7, category_id: 1, segmentation: [[0, 0, 40, 0, 40, 3]], iscrowd: 0 },
      { id: 6, image_id: 99, category_id: 1, segmentation: [[0, 0, 1, 0, 1, 1]], iscrowd: 0 },
    ],
  };
  const { masks, skipped } = cocoToMasks(json, 'ann.json', CLASSES);
  // Column-major: 3 zeros (column 0), 3 ones (column 1), then 6 zeros; then class 2 on column 3.
  assert.deepEqual([...masks[0].mask.data], [0, 1, 0, 2, 0, 1, 0, 2, 0, 1, 0, 2]);
  // Annotations are checked first and painted image by image, so those found bad while painting come last.
  const why = new Map(skipped.map((s) => [s.item, s.why]));
  assert.deepEqual([...why.keys()].sort(), [
    'ann.json annotations[2] (id 3)',
    'ann.json annotations[3] (id 4)',
    'ann.json annotations[4] (id 5)',
    'ann.json annotations[5] (id 6)',
  ]);
  assert.match(why.get('ann.json annotations[2] (id 3)')!, /"martian" is not in the class list/);
  assert.match(why.get('ann.json annotations[3] (id 4)')!, /does not match the image/);
  assert.match(why.get('ann.json annotations[4] (id 5)')!, /outside the 4x3 image/);
  assert.match(why.get('ann.json annotations[5] (id 6)')!, /image_id 99/);
  assert.throws(() => cocoToMasks({ images: [] }, 'bad.json', CLASSES), /bad\.json: not a COCO file/);
});

test('labelme: export then import is exact, holes and nested regions and ignore included', () => {
  const file = maskToLabelme(HARD, '../img/a.png', CLASSES, 0);
  assert.equal(file.imageWidth, 11);
  assert.ok(file.shapes.some((s) => s.label === '__ignore__'));
  assert.ok(
    file.shapes.some((s) => s.label === '_background_'),
    'the ring hole is a background polygon',
  );
  const back = labelmeToMask(JSON.parse(JSON.stringify(file)), 'a.json', CLASSES);
  assert.deepEqual(back.skipped, []);
  assert.deepEqual(back.mask.data, HARD.data);
  assert.equal(back.imagePath, '../img/a.png');
});

test('labelme: export then import is exact on 40 random masks (blobs, holes, one-pixel lines, corner contacts)', () => {
  const rng = new SeededRandom(11);
  for (let k = 0; k < 40; k++) {
    const [w, h] = [rng.int(5, 30), rng.int(5, 30)];
    const data = new Uint8Array(w * h);
    // Random rectangles and single pixels of 3 classes: thin parts, holes and diagonal contacts arise by chance.
    for (let n = rng.int(1, 12); n > 0; n--) {
      const c = rng.int(0, 4);
      const [x0, y0] = [rng.int(0, w), rng.int(0, h)];
      const [x1, y1] =
        rng.next() < 0.3 ? [x0 + 1, y0 + 1] : [Math.min(w, x0 + rng.int(1, 10)), Math.min(h, y0 + rng.int(1, 10))];
      for (let y = y0; y < y1; y++) data.fill(c, y * w + x0, y * w + x1);
    }
    for (let n = rng.int(0, 15); n > 0; n--) data[rng.int(0, w * h)] = rng.int(0, 4);
    const mask = { width: w, height: h, data };
    const back = labelmeToMask(JSON.parse(JSON.stringify(maskToLabelme(mask, 'a.png', CLASSES, 0))), 'a.json', CLASSES);
    const differ = [];
    for (let i = 0; i < w * h; i++) if (back.mask.data[i] !== data[i]) differ.push(`${i % w},${Math.floor(i / w)}`);
    assert.deepEqual(differ, [], `random mask ${k} (${w}x${h})`);
  }
});

test('labelme import: rectangle, circle, line, point and mask shapes; bad shapes skipped with why', () => {
  const png = encodeVocPng({ width: 2, height: 2, data: new Uint8Array([1, 0, 0, 1]) });
  const json = {
    imageWidth: 12,
    imageHeight: 12,
    imagePath: 'x.png',
    shapes: [
      // First: a 10 px wide line paints rows 1..11; the shapes after it paint over it.
      {
        label: 'c5',
        shape_type: 'line',
        points: [
          [0, 6],
          [11, 6],
        ],
      },
      {
        label: 'c1',
        shape_type: 'rectangle',
        points: [
          [1, 1],
          [3, 2],
        ],
      },
      {
        label: 'c2',
        shape_type: 'circle',
        points: [
          [8, 8],
          [8, 10],
        ],
      },
      { label: 'c3', shape_type: 'point', points: [[0, 11]] },
      {
        label: 'c4',
        shape_type: 'mask',
        points: [
          [10, 0],
          [11, 1],
        ],
        mask: Buffer.from(png).toString('base64'),
      },
      {
        label: 'nope',
        shape_type: 'polygon',
        points: [
          [0, 0],
          [1, 0],
          [1, 1],
        ],
      },
      {
        label: 'c1',
        shape_type: 'polygon',
        points: [
          [0, 0],
          [1, 0],
        ],
      },
      {
        label: 'c1',
        shape_type: 'polygon',
        points: [
          [0, 0],
          [100, 0],
          [1, 1],
        ],
      },
    ],
  };
  const r = labelmeToMask(json, 'x.json', CLASSES);
  const at = (x: number, y: number): number => r.mask.data[y * 12 + x];
  for (let y = 1; y <= 2; y++) for (let x = 1; x <= 3; x++) assert.equal(at(x, y), 1, `rectangle pixel ${x},${y}`);
  assert.equal(at(1, 0), 0, 'the rectangle starts at row 1');
  assert.equal(at(8, 8), 2);
  assert.equal(at(8, 10), 2);
  assert.equal(at(8, 11), 5, 'outside the circle of radius 2 the line shows');
  assert.equal(at(0, 11), 3);
  assert.equal(at(10, 0), 4);
  assert.equal(at(11, 0), 0, 'mask shape reads its PNG');
  assert.equal(at(11, 1), 4);
  assert.equal(at(5, 6), 5, 'line');
  assert.deepEqual(
    r.skipped.map((s) => s.item),
    ['x.json shapes[5] ("nope")', 'x.json shapes[6] ("c1")', 'x.json shapes[7] ("c1")'],
  );
  assert.match(r.skipped[1].why, /needs at least 3 points/);
  assert.match(r.skipped[2].why, /outside the 12x12 image/);
});

test('YOLO: round trip of hole-free regions, holes filled and counted, data.yaml both ways, boxes skipped', () => {
  const m = mask(['......', '.11.22', '.11.22', '......', '3333..']);
  const y = maskToYolo(m, 0);
  assert.equal(y.filledHoles, 0);
  const back = yoloToMask(y.text, 'a.txt', 6, 5, 3);
  assert.deepEqual(back.mask.data, m.data);
  assert.equal(maskToYolo(HARD, 0).filledHoles, 1);
  const names = ['c1', 'c2', 'c3'];
  assert.deepEqual(parseDataYaml(dataYaml(classListFromNames(names)), 'data.yaml'), names);
  assert.deepEqual(parseDataYaml('names: [a, b]\n', 'd.yaml'), ['a', 'b']);
  assert.throws(() => parseDataYaml('names: {0: a, 2: b}\n', 'd.yaml'), /run 0, 1, 2/);
  assert.throws(() => parseDataYaml('nc: 3\n', 'd.yaml'), /needs "names"/);
  const bad = yoloToMask('0 0.5 0.5 0.2 0.2\n7 0 0 1 0 1 1\n0 0 0 2 0 1 1\n', 'b.txt', 10, 10, 3);
  assert.deepEqual(
    bad.skipped.map((s) => s.item),
    ['b.txt:1', 'b.txt:2', 'b.txt:3'],
  );
  assert.match(bad.skipped[0].why, /detection box/);
});

test('VOC: palette PNGs read back by index, 255 kept; objects numbered per region', () => {
  const png = encodeVocPng(HARD);
  assert.deepEqual(decodeMaskPng(png, 'a.png').data, HARD.data);
  const { objects, count } = objectMap(HARD);
  assert.equal(count, maskRegions(HARD).filter((r) => r.classIndex !== 255).length);
  assert.equal(objects.data[8 * 11], 255);
});

test('COCO import paints one image at a time: the next mask exists only when it is asked for', () => {
  const json = {
    images: [
      { id: 1, file_name: 'a.png', width: 4, height: 3 },
      { id: 2, file_name: 'b.png', width: 4, height: 3 },
    ],
    categories: [{ id: 1, name: 'c1' }],
    annotations: [
      { id: 1, image_id: 1, category_id: 1, segmentation: [[0, 0, 2, 0, 2, 2]] },
      { id: 2, image_id: 2, category_id: 1, segmentation: [[0, 0, 90, 0, 2, 2]] },
    ],
  };
  const source = cocoMaskSource(json, 'lazy.json', CLASSES);
  assert.equal(source.total, 2);
  const it = source.masks();
  const first = it.next();
  assert.equal(first.done, false);
  assert.equal(first.value?.imageName, 'a.png');
  assert.equal(source.skipped.length, 0, 'the second image is not painted yet');
  assert.equal(it.next().value?.imageName, 'b.png');
  assert.deepEqual(
    source.skipped.map((s) => s.item),
    ['lazy.json annotations[1] (id 2)'],
  );
  assert.equal(it.next().done, true);
});
