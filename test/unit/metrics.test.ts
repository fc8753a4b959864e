import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bandFromDiagonal,
  boundaryFScore,
  boundaryIoU,
  classBoundaryScores,
  contourPixels,
  innerBand,
} from '../../src/masks/boundaryMetrics';
import { squaredDistanceTo } from '../../src/masks/distanceTransform';
import { compareMasks, meanMetrics } from '../../src/masks/segmentationMetrics';
import type { MaskImage } from '../../src/masks/maskImage';

function mask(rows: string[]): MaskImage {
  const height = rows.length;
  const width = rows[0].length;
  const data = new Uint8Array(width * height);
  rows.forEach((r, y) =>
    [...r].forEach((ch, x) => {
      data[y * width + x] = ch === 'x' ? 255 : Number(ch);
    }),
  );
  return { width, height, data };
}

function rect(w: number, h: number, x0: number, y0: number, x1: number, y1: number): Uint8Array {
  const out = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) out[y * w + x] = 1;
  return out;
}

test('distance transform is exact Euclidean (squared)', () => {
  const t = new Uint8Array(25);
  t[12] = 1; // centre of 5x5
  const d = squaredDistanceTo(t, 5, 5);
  assert.equal(d[12], 0);
  assert.equal(d[0], 8);
  assert.equal(d[2], 4);
  assert.equal(d[7], 1);
  assert.equal(d[6], 2);
  assert.ok(squaredDistanceTo(new Uint8Array(4), 2, 2).every((v) => v === Infinity));
});

test('pixel accuracy, IoU, Dice computed by hand', () => {
  const truth = mask(['0011', '0011', '0000', '0000']);
  const pred = mask(['0001', '0011', '0010', '0000']);
  const m = compareMasks(truth, pred, { bandPixels: 1 });
  // truth fg = 4, pred fg = 4, intersection = 3 -> IoU 3/5, Dice 6/8; background: 11 / 13
  assert.equal(m.perClassIoU[1], 3 / 5);
  assert.equal(m.perClassIoU[0], 11 / 13);
  assert.equal(m.miou, (3 / 5 + 11 / 13) / 2);
  assert.equal(m.dice, 6 / 8);
  assert.equal(m.pixelAccuracy, 14 / 16);
  assert.ok(Math.abs(m.changedFraction - 2 / 16) < 1e-12);
});

test('ignore pixels are excluded from every count', () => {
  const truth = mask(['xx11', '0011', '0000', '0000']);
  const pred = mask(['1101', '0011', '0000', '0000']);
  const m = compareMasks(truth, pred, { bandPixels: 1 });
  // the two ignore pixels would otherwise be errors; the one remaining error is at (2,0)
  assert.equal(m.pixelAccuracy, 13 / 14);
  assert.equal(m.perClassIoU[1], 3 / 4);
  assert.ok(Math.abs(m.changedFraction - 1 / 14) < 1e-12);
});

test('empty masks: both empty is perfect, one empty is zero', () => {
  const empty = mask(['000', '000']);
  const both = compareMasks(empty, empty);
  assert.deepEqual([both.miou, both.dice, both.boundaryIoU, both.boundaryF, both.pixelAccuracy], [1, 1, 1, 1, 1]);
  const some = mask(['010', '000']);
  const missed = compareMasks(some, empty);
  assert.equal(missed.dice, 0);
  assert.equal(missed.foregroundBoundaryIoU, 0);
  // Background's band (the whole 3x2 image is within one pixel of its border) is its region: 5 of 6 shared;
  // the object's is 0; Boundary IoU averages the two present classes, as mIoU does.
  assert.equal(missed.boundaryIoU, (5 / 6 + 0) / 2);
  assert.equal(missed.boundaryF, 0);
  assert.equal(missed.perClassIoU[1], 0);
  const allIgnore = compareMasks(mask(['xx']), mask(['11']));
  assert.equal(allIgnore.pixelAccuracy, 1);
  assert.equal(allIgnore.changedFraction, 0);
});

test('inner band of a square follows the zero-padded erosion of the paper', () => {
  const sq = rect(8, 8, 1, 1, 7, 7); // 6x6 square
  const b1 = innerBand(sq, 8, 8, 1);
  assert.equal(
    b1.reduce((s, v) => s + v, 0),
    36 - 16,
  ); // ring of width 1
  const b2 = innerBand(sq, 8, 8, 2);
  assert.equal(
    b2.reduce((s, v) => s + v, 0),
    36 - 4,
  );
  const full = rect(4, 4, 0, 0, 4, 4); // touching the image border: the border is an edge
  assert.equal(
    innerBand(full, 4, 4, 1).reduce((s, v) => s + v, 0),
    12,
  );
});

test('inner band is the reference erosion by a square (Chebyshev distance), not a Euclidean disc', () => {
  // A 13x13 region with a one-pixel hole at its centre, band 2: the border ring (pixels within 2 of the
  // zero padding: 169 - 9 x 9 = 88) and the 5x5 square around the hole less the hole (24); a Euclidean band
  // would take only the 12 pixels within distance 2 of the hole.
  const full = rect(13, 13, 0, 0, 13, 13);
  full[6 * 13 + 6] = 0;
  const band = innerBand(full, 13, 13, 2);
  assert.equal(
    band.reduce((s, v) => s + v, 0),
    88 + 24,
  );
  assert.equal(band[4 * 13 + 4], 1, 'the pixel two steps diagonally from the hole is in the band');
  assert.equal(band[3 * 13 + 6], 0, 'three rows above the hole is not');
});

test('Boundary IoU averages every present class, background included; the foreground figure apart', () => {
  // 6x6, band 1. Truth: columns 0-2 background, 3-5 class 1; prediction: class 1 from column 4.
  const truth = mask(Array.from({ length: 6 }, () => '000111'));
  const pred = mask(Array.from({ length: 6 }, () => '000011'));
  const m = compareMasks(truth, pred, { bandPixels: 1 });
  // Background: truth band 14 (columns 0 and 2, column 1 at the top and bottom rows), prediction band 16
  // (columns 0 and 3, columns 1-2 at the top and bottom rows), 10 shared: 10 / 20. Class 1: truth band 14,
  // prediction band 12 (all of its two columns), 8 shared: 8 / 18.
  assert.ok(Math.abs(m.boundaryIoU - (10 / 20 + 8 / 18) / 2) < 1e-12, `${m.boundaryIoU}`);
  assert.ok(Math.abs(m.foregroundBoundaryIoU - 8 / 18) < 1e-12);
});

test('boundary IoU by hand: a square shifted by one pixel', () => {
  const w = 10;
  const g = rect(w, w, 2, 2, 6, 6); // 4x4, band 1 = ring of 12
  const p = rect(w, w, 3, 2, 7, 6); // shifted right by 1
  const ringG = innerBand(g, w, w, 1);
  const ringP = innerBand(p, w, w, 1);
  let inter = 0;
  let union = 0;
  for (let i = 0; i < ringG.length; i++) {
    inter += ringG[i] & ringP[i];
    union += ringG[i] | ringP[i];
  }
  // rows y=2,5: x=3,4,5 in both (6); rows y=3,4: g's ring has x=2,5, p's has x=3,6: none shared; union 12+12-6
  assert.equal(inter, 6);
  assert.equal(union, 18);
  assert.equal(boundaryIoU(g, p, w, w, 1), 1 / 3);
  assert.equal(boundaryIoU(g, g, w, w, 1), 1);
  assert.equal(bandFromDiagonal(100, 100, 0.02), 3);
  assert.equal(bandFromDiagonal(10, 10, 0.02), 1);
});

test('boundary F-score by hand: tolerance decides what counts as a hit', () => {
  const w = 12;
  const g = rect(w, w, 2, 2, 8, 8);
  const p = rect(w, w, 2, 2, 9, 8); // right edge moved out by one
  assert.equal(
    contourPixels(g, w, w).reduce((s, v) => s + v, 0),
    20,
  );
  assert.equal(boundaryFScore(g, p, w, w, 1), 1); // every contour pixel within 1 px
  // tolerance 0: p's contour = 22 pixels, 16 shared with g's 20 (top/bottom x=2..7 and left column)
  const cg = contourPixels(g, w, w);
  const cp = contourPixels(p, w, w);
  let shared = 0;
  for (let i = 0; i < cg.length; i++) shared += cg[i] & cp[i];
  const precision = shared / 22;
  const recall = shared / 20;
  assert.ok(Math.abs(boundaryFScore(g, p, w, w, 0) - (2 * precision * recall) / (precision + recall)) < 1e-12);
});

test('meanMetrics averages over images', () => {
  const a = compareMasks(mask(['01']), mask(['01']));
  const b = compareMasks(mask(['01']), mask(['00']));
  const m = meanMetrics([a, b]);
  assert.equal(m.pixelAccuracy, 0.75);
  assert.equal(m.dice, 0.5);
});

test('boundary F: the disc search around contour pixels counts what two distance transforms count', () => {
  // The reference: each contour pixel's squared distance to the other contour, as the transform gives it.
  const reference = (g: Uint8Array, p: Uint8Array, w: number, h: number, t: number): number => {
    const cg = contourPixels(g, w, h);
    const cp = contourPixels(p, w, h);
    const ng = cg.reduce((a, v) => a + v, 0);
    const np = cp.reduce((a, v) => a + v, 0);
    if (ng === 0 && np === 0) return 1;
    if (ng === 0 || np === 0) return 0;
    const dg = squaredDistanceTo(cg, w, h);
    const dp = squaredDistanceTo(cp, w, h);
    let hp = 0;
    let hg = 0;
    for (let i = 0; i < cg.length; i++) {
      if (cp[i] && dg[i] <= t * t) hp++;
      if (cg[i] && dp[i] <= t * t) hg++;
    }
    const [pr, rc] = [hp / np, hg / ng];
    return pr + rc === 0 ? 0 : (2 * pr * rc) / (pr + rc);
  };
  let seed = 7;
  const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let k = 0; k < 12; k++) {
    const [w, h] = [37 + k, 29 + 2 * k];
    // Blobs: a few random discs each, so contours are long and near each other.
    const blobs = (): Uint8Array => {
      const m = new Uint8Array(w * h);
      for (let b = 0; b < 3; b++) {
        const [cx, cy, r] = [rand() * w, rand() * h, 3 + rand() * 8];
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++) if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) m[y * w + x] = 1;
      }
      return m;
    };
    const [g, p] = [blobs(), blobs()];
    for (const t of [0, 1, 1.5, 2, 3, 5, 8])
      assert.equal(boundaryFScore(g, p, w, h, t), reference(g, p, w, h, t), `masks ${k}, tolerance ${t}`);
  }
});

test("every class's boundary figures at once equal each class's own, ignore pixels and large bands included", () => {
  let seed = 11;
  const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let k = 0; k < 10; k++) {
    const [w, h] = [23 + 3 * k, 17 + 2 * k];
    // Label maps of overlapping random rectangles of 5 classes; the truth with a patch of ignore.
    const labels = (ignore: boolean): Uint8Array => {
      const m = new Uint8Array(w * h);
      for (let b = 0; b < 6; b++) {
        const [x0, y0] = [Math.floor(rand() * w), Math.floor(rand() * h)];
        const [x1, y1] = [x0 + 1 + Math.floor(rand() * w * 0.6), y0 + 1 + Math.floor(rand() * h * 0.6)];
        const c = ignore && b === 5 ? 255 : 1 + Math.floor(rand() * 4);
        for (let y = y0; y < Math.min(h, y1); y++) for (let x = x0; x < Math.min(w, x1); x++) m[y * w + x] = c;
      }
      return m;
    };
    const [truth, pred] = [labels(true), labels(false)];
    const valid = truth.map((v) => (v === 255 ? 0 : 1));
    const classes = [0, 1, 2, 3, 4];
    for (const band of [1, 2, 3, 12, 40])
      for (const tol of [0, 1, 2, 3, 9]) {
        const all = classBoundaryScores(truth, pred, w, h, band, tol, valid, classes);
        for (const c of classes) {
          const g = truth.map((v) => (v === c ? 1 : 0));
          const p = pred.map((v) => (v === c ? 1 : 0));
          const where = `maps ${k}, class ${c}, band ${band}, tolerance ${tol}`;
          assert.equal(all.boundaryIoU[c], boundaryIoU(g, p, w, h, band, valid), `Boundary IoU, ${where}`);
          assert.equal(all.boundaryF[c], boundaryFScore(g, p, w, h, tol, valid), `boundary F, ${where}`);
        }
      }
  }
});
