import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AUTO_HUE_JITTER,
  COLOUR_CUE_SEPARATION,
  colourSeparation,
  hueSaturationMatrix,
  randomCrop,
  randomCropLabels,
  resolveHueJitter,
  type AugmentOptions,
} from '../../src/engine/training/augment';
import { normalizePixel } from '../../src/engine/network/networkInput';
import { syntheticSample } from '../../src/synthetic/syntheticShapes';
import { SeededRandom } from '../../src/masks/seededRandom';
import { squaredDistanceTo } from '../../src/masks/distanceTransform';
import { boundaryBand } from '../../src/engine/training/losses';
import type { MaskImage, RgbImage } from '../../src/masks/maskImage';

const apply = (m: number[], rgb: number[]): number[] =>
  [0, 1, 2].map((r) => m[r * 3] * rgb[0] + m[r * 3 + 1] * rgb[1] + m[r * 3 + 2] * rgb[2]);
const close = (a: number[], b: number[], what: string): void =>
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-9, `${what}: ${a.join(',')} vs ${b.join(',')}`));

test('the hue/saturation matrix keeps greys, turns hues around the grey axis and scales saturation', () => {
  close(hueSaturationMatrix(0, 1), [1, 0, 0, 0, 1, 0, 0, 0, 1], 'no turn, saturation 1: identity');
  for (const [angle, sat] of [
    [0.7, 1],
    [-2, 0.3],
    [Math.PI, 1.5],
  ])
    close(apply(hueSaturationMatrix(angle, sat), [80, 80, 80]), [80, 80, 80], `grey under ${angle}, ${sat}`);
  // A third of a full turn maps the primaries onto each other: red -> green -> blue -> red.
  const third = hueSaturationMatrix((2 * Math.PI) / 3, 1);
  close(apply(third, [200, 0, 0]), [0, 200, 0], 'red turns to green');
  close(apply(third, [0, 200, 0]), [0, 0, 200], 'green turns to blue');
  close(apply(third, [10, 50, 90]), [90, 10, 50], 'any colour: channels rotate');
  // Saturation 0: every colour goes to its grey (the channel mean); brightness (the mean) never changes.
  close(apply(hueSaturationMatrix(1.1, 0), [10, 50, 90]), [50, 50, 50], 'saturation 0: grey');
  const turned = apply(hueSaturationMatrix(0.9, 1), [10, 50, 90]);
  assert.ok(Math.abs(turned.reduce((a, b) => a + b) - 150) < 1e-9, 'the channel sum stays');
  const dist = (c: number[]): number => Math.hypot(c[0] - 50, c[1] - 50, c[2] - 50);
  assert.ok(Math.abs(dist(turned) - dist([10, 50, 90])) < 1e-9, 'a turn keeps the distance from grey');
  assert.ok(
    Math.abs(dist(apply(hueSaturationMatrix(0.9, 1.5), [10, 50, 90])) - 1.5 * dist([10, 50, 90])) < 1e-9,
    'saturation scales it',
  );
});

function sample(): { image: RgbImage; mask: MaskImage } {
  const w = 40;
  const h = 30;
  const image: RgbImage = { width: w, height: h, data: new Uint8Array(w * h * 3) };
  const mask: MaskImage = { width: w, height: h, data: new Uint8Array(w * h) };
  for (let i = 0; i < w * h; i++) {
    const obj = i % w > 15 && Math.floor(i / w) > 10;
    mask.data[i] = obj ? 1 : 0;
    image.data.set(obj ? [200, 60, 30] : [40, 160, 70], i * 3);
  }
  return { image, mask };
}

test('hue jitter changes crop colours but not their labels or positions; 0 leaves crops as before', () => {
  const { image, mask } = sample();
  const base: AugmentOptions = { size: 32, boundaryBias: 0.5, boundaryRadius: 2, colorJitter: 0 };
  const plain = randomCrop(image, mask, new SeededRandom(3), base);
  const zero = randomCrop(image, mask, new SeededRandom(3), { ...base, hueJitter: 0 });
  assert.deepEqual(zero.x, plain.x, 'hue jitter 0 draws nothing more: the same crop');
  assert.deepEqual(zero.y, plain.y);
  let differs = 0;
  let greyed = 0;
  for (let seed = 0; seed < 20; seed++) {
    const a = randomCrop(image, mask, new SeededRandom(seed), base);
    const b = randomCrop(image, mask, new SeededRandom(seed), { ...base, hueJitter: 1 });
    assert.deepEqual(b.y, a.y, 'labels stay (the colour draws come after the geometry draws)');
    assert.deepEqual(b.band, a.band);
    if (a.x.some((v, i) => Math.abs(v - b.x[i]) > 1e-3)) differs++;
    // Brightness (the channel mean) stays within clipping: compare on a background pixel.
    const i = a.y.indexOf(0);
    if (i >= 0) {
      const ma = (a.x[i * 3] + a.x[i * 3 + 1] + a.x[i * 3 + 2]) / 3;
      const mb = (b.x[i * 3] + b.x[i * 3 + 1] + b.x[i * 3 + 2]) / 3;
      assert.ok(Math.abs(ma - mb) < 0.25, `mean ${ma} vs ${mb}`);
      if (
        Math.max(b.x[i * 3], b.x[i * 3 + 1], b.x[i * 3 + 2]) - Math.min(b.x[i * 3], b.x[i * 3 + 1], b.x[i * 3 + 2]) <
        normalizePixel(40) - normalizePixel(0)
      )
        greyed++;
    }
  }
  assert.ok(differs >= 18, `hue jitter 1 recoloured ${differs} of 20 crops`);
  assert.ok(greyed >= 1, 'saturation jitter 1 sometimes takes colours most of the way to grey');
});

test('automatic hue jitter: off when colour tells two classes apart, 0.5 when it does not, as set otherwise', () => {
  // Generated shapes: ellipses are orange and rectangles cyan in every image.
  const shapes = Array.from({ length: 4 }, (_, i) =>
    syntheticSample({ width: 64, height: 64, numClasses: 3, seed: 40 + i }),
  );
  const off = resolveHueJitter('auto', shapes, 3);
  assert.equal(off.value, 0);
  assert.match(off.reason, /^hue jitter off \(auto\): classes 1 and 2 lie [\d.]+ spreads apart in colour/);
  // The same shapes, each object painted a colour drawn from one distribution whatever its class: no cue.
  const rng = new SeededRandom(5);
  const recoloured = shapes.map(({ image, mask }) => {
    const data = Uint8Array.from(image.data);
    const colours = [
      null,
      [rng.int(40, 220), rng.int(40, 220), rng.int(40, 220)],
      [rng.int(40, 220), rng.int(40, 220), rng.int(40, 220)],
    ];
    for (let i = 0; i < mask.data.length; i++) {
      const c = colours[mask.data[i]];
      if (c) data.set(c, i * 3);
    }
    return { image: { ...image, data }, mask };
  });
  const sep = colourSeparation(recoloured, 3);
  assert.ok(sep.separation !== null && sep.separation < COLOUR_CUE_SEPARATION, `separation ${JSON.stringify(sep)}`);
  assert.deepEqual(resolveHueJitter('auto', recoloured, 3).value, AUTO_HUE_JITTER);
  // One foreground class: nothing for colour to tell apart; one image: no spread to measure.
  const binary = Array.from({ length: 3 }, (_, i) =>
    syntheticSample({ width: 64, height: 64, numClasses: 2, seed: 60 + i }),
  );
  assert.match(
    resolveHueJitter('auto', binary, 2).reason,
    /^hue jitter 0\.5 \(auto\): fewer than two foreground classes/,
  );
  assert.match(resolveHueJitter('auto', shapes.slice(0, 1), 3).reason, /no class is in two training images yet/);
  assert.deepEqual(resolveHueJitter(0.2, shapes, 3), { value: 0.2, reason: 'hue jitter 0.2, as set' });
});

test("a crop's labels alone are the labels of the crop drawn with the same generator, which ends in the same state", () => {
  const { image, mask } = sample();
  const small = syntheticSample({ width: 20, height: 14, numClasses: 3, seed: 4 });
  for (const [img, msk] of [
    [image, mask],
    [small.image, small.mask],
  ] as const)
    for (const hueJitter of [0, 0.5])
      for (let seed = 0; seed < 10; seed++) {
        const options: AugmentOptions = { size: 32, boundaryBias: 0.5, boundaryRadius: 3, colorJitter: 0.1, hueJitter };
        const [a, b] = [new SeededRandom(seed), new SeededRandom(seed)];
        assert.deepEqual(randomCropLabels(img, msk, a, options), randomCrop(img, msk, b, options).y);
        assert.equal(a.next(), b.next(), 'the same draws were made');
      }
});

test('the boundary band holds the pixels within the radius of an edge between two classes, as the distance transform says', () => {
  let seed = 3;
  const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let k = 0; k < 8; k++) {
    const [w, h] = [19 + 5 * k, 13 + 3 * k];
    const labels = new Int32Array(w * h);
    for (let b = 0; b < 5; b++) {
      const [x0, y0] = [Math.floor(rand() * w), Math.floor(rand() * h)];
      const c = b === 4 ? 255 : 1 + Math.floor(rand() * 3);
      for (let y = y0; y < Math.min(h, y0 + 2 + rand() * h * 0.5); y++)
        for (let x = x0; x < Math.min(w, x0 + 2 + rand() * w * 0.5); x++) labels[y * w + x] = c;
    }
    // The reference: edges between two non-ignore classes, then the exact distance to them.
    const edge = new Uint8Array(w * h);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        const v = labels[i];
        if (v === 255) continue;
        if (x + 1 < w && labels[i + 1] !== v && labels[i + 1] !== 255) edge[i] = edge[i + 1] = 1;
        if (y + 1 < h && labels[i + w] !== v && labels[i + w] !== 255) edge[i] = edge[i + w] = 1;
      }
    const d = squaredDistanceTo(edge, w, h);
    for (const radius of [0, 1, 2.5, 3, 6]) {
      const want = Float32Array.from(d, (v) => (v <= radius * radius ? 1 : 0));
      assert.deepEqual(boundaryBand(labels, w, h, radius), want, `maps ${k}, radius ${radius}`);
    }
  }
});
