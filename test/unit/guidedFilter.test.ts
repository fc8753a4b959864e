import assert from 'node:assert/strict';
import { test } from 'node:test';
import { boxMean, guidedFilterProbabilities } from '../../src/engine/inference/guidedFilter';
import { SeededRandom } from '../../src/masks/seededRandom';

/** The window of radius r around (x, y), clipped at the borders. */
function windowOf(x: number, y: number, r: number, w: number, h: number): [number, number][] {
  const out: [number, number][] = [];
  for (let v = Math.max(0, y - r); v <= Math.min(h - 1, y + r); v++)
    for (let u = Math.max(0, x - r); u <= Math.min(w - 1, x + r); u++) out.push([u, v]);
  return out;
}

/** Solves the 3x3 system m a = b by Cramer's rule. */
function solve3(m: number[][], b: number[]): number[] {
  const det = (a: number[][]): number =>
    a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
    a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
    a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  const d = det(m);
  return [0, 1, 2].map((c) => det(m.map((row, i) => row.map((v, j) => (j === c ? b[i] : v)))) / d);
}

/**
 * The guided filter written from its definition, pixel by pixel: in each window a ridge regression of the
 * probability on the colour; each pixel averages the affine predictions of the windows that hold it.
 */
function referenceGuidedFilter(guide: number[][], p: number[], w: number, h: number, r: number, eps: number): number[] {
  const a: number[][] = [];
  const b: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const win = windowOf(x, y, r, w, h).map(([u, v]) => v * w + u);
      const mean = (f: (i: number) => number): number => win.reduce((s, i) => s + f(i), 0) / win.length;
      const mI = [0, 1, 2].map((c) => mean((i) => guide[i][c]));
      const mp = mean((i) => p[i]);
      const cov = [0, 1, 2].map((c) =>
        [0, 1, 2].map((d) => mean((i) => guide[i][c] * guide[i][d]) - mI[c] * mI[d] + (c === d ? eps : 0)),
      );
      const cip = [0, 1, 2].map((c) => mean((i) => guide[i][c] * p[i]) - mI[c] * mp);
      const ak = solve3(cov, cip);
      a.push(ak);
      b.push(mp - ak[0] * mI[0] - ak[1] * mI[1] - ak[2] * mI[2]);
    }
  }
  const q: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const win = windowOf(x, y, r, w, h).map(([u, v]) => v * w + u);
      const i = y * w + x;
      q.push(
        win.reduce((s, k) => s + a[k][0] * guide[i][0] + a[k][1] * guide[i][1] + a[k][2] * guide[i][2] + b[k], 0) /
          win.length,
      );
    }
  }
  return q;
}

test('box means over clipped windows equal the sums written out, for radii below and beyond the image', () => {
  const rng = new SeededRandom(3);
  const w = 11;
  const h = 7;
  const src = Float32Array.from({ length: w * h }, () => rng.range(-1, 1));
  for (const r of [0, 1, 3, 12]) {
    const got = boxMean(src, w, h, r, new Float32Array(w * h), new Float32Array(w * h));
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const win = windowOf(x, y, r, w, h);
        const want = win.reduce((s, [u, v]) => s + src[v * w + u], 0) / win.length;
        assert.ok(Math.abs(got[y * w + x] - want) < 1e-5, `r=${r} (${x},${y}): ${got[y * w + x]} vs ${want}`);
      }
    }
  }
});

test('the guided filter of class probabilities equals its definition computed pixel by pixel, and the classes sum to one', () => {
  const rng = new SeededRandom(11);
  const w = 13;
  const h = 9;
  const classes = 3;
  // A colour image with an edge (two colours plus noise) and noisy probabilities.
  const guide = Array.from({ length: w * h }, (_, i) =>
    (i % w < 6 ? [0.8, 0.2, 0.1] : [0.1, 0.3, 0.9]).map((v) => v + rng.range(-0.05, 0.05)),
  );
  const probs = new Float32Array(w * h * classes);
  for (let i = 0; i < w * h; i++) {
    const raw = [0, 1, 2].map(() => rng.range(0.05, 1));
    const s = raw[0] + raw[1] + raw[2];
    raw.forEach((v, c) => {
      probs[i * classes + c] = v / s;
    });
  }
  const r = 2;
  const eps = 0.01;
  // The guide given as the network's normalised pixels (v / 127.5 - 1), mapped back by scale and offset.
  const normalised = Float32Array.from(guide.flat(), (v) => v * 2 - 1);
  const out = guidedFilterProbabilities(normalised, probs, h, w, classes, { radius: r, eps }, 0.5, 0.5);
  const refs = [0, 1, 2].map((c) =>
    referenceGuidedFilter(
      guide,
      Array.from({ length: w * h }, (_, i) => probs[i * classes + c]),
      w,
      h,
      r,
      eps,
    ),
  );
  let clipped = 0;
  for (let i = 0; i < w * h; i++) {
    const raw = refs.map((q) => q[i]);
    if (raw.some((v) => v < 0)) clipped++;
    const pos = raw.map((v) => Math.max(0, v));
    const s = pos[0] + pos[1] + pos[2];
    for (let c = 0; c < classes; c++)
      assert.ok(
        Math.abs(out[i * classes + c] - pos[c] / s) < 1e-4,
        `pixel ${i} class ${c}: ${out[i * classes + c]} vs ${pos[c] / s}`,
      );
    assert.ok(
      Math.abs(raw[0] + raw[1] + raw[2] - 1) < 1e-5,
      'the filter is linear, so the unclipped classes sum to one',
    );
  }
  assert.ok(clipped < w * h, 'most pixels need no clipping');
  // The filter changes these probabilities (else this comparison could not fail).
  assert.ok(out.some((v, k) => Math.abs(v - probs[k]) > 0.05));
});

test("the guided filter moves a blurred boundary onto the image's colour edge, exactly and with the fast (subsampled) filter", () => {
  const w = 64;
  const h = 16;
  const edge = 29; // the colour edge: columns < 29 are red, the rest blue
  const guide = new Float32Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) guide.set(x < edge ? [0.9, 0.1, 0.1] : [0.1, 0.2, 0.8], (y * w + x) * 3);
  // Two classes; the object's probability is a ramp centred 3 px off the edge, as a coarse upsampled prediction is.
  const ramp = (offset: number): Float32Array => {
    const probs = new Float32Array(w * h * 2);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const p = Math.min(1, Math.max(0, 0.5 - (x - (edge + offset)) / 16));
        probs.set([1 - p, p], (y * w + x) * 2);
      }
    }
    return probs;
  };
  const boundary = (q: Float32Array): number[] =>
    Array.from({ length: h }, (_, y) => {
      let x = 0;
      while (x < w && q[(y * w + x) * 2 + 1] > q[(y * w + x) * 2]) x++;
      return x;
    });
  for (const offset of [3, -3]) {
    const probs = ramp(offset);
    assert.deepEqual(new Set(boundary(probs)), new Set([edge + offset]), `before: ${offset} px off`);
    for (const subsample of [1, 4]) {
      const q = guidedFilterProbabilities(guide, probs, h, w, 2, { radius: 8, eps: 0.001, subsample });
      assert.deepEqual(
        new Set(boundary(q)),
        new Set([edge]),
        `offset ${offset}, subsample ${subsample}: on the colour edge`,
      );
      // Far from the edge, confident probabilities stay confident.
      assert.ok(q[(5 * w + 2) * 2 + 1] > 0.95 && q[(5 * w + 60) * 2] > 0.95);
    }
  }
  // A constant probability map stays constant, whatever the guide.
  const flat = new Float32Array(w * h * 2).map((_, k) => (k % 2 === 0 ? 0.3 : 0.7));
  const q = guidedFilterProbabilities(guide, flat, h, w, 2, { radius: 8, eps: 0.001, subsample: 4 });
  assert.ok(q.every((v, k) => Math.abs(v - flat[k]) < 1e-5));
  assert.throws(
    () => guidedFilterProbabilities(guide.subarray(3), flat, h, w, 2, { radius: 8, eps: 0.001 }),
    /guide has/,
  );
});
