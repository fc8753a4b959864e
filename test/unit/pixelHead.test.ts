import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FEATURE_HALO, PIXEL_FEATURE_COUNT, pixelFeatures } from '../../src/engine/inference/pixelFeatures';
import { PIXEL_FEATURE_SET, applyPixelHead, pixelHeadProblem } from '../../src/engine/inference/pixelHead';
import { fitPixelHead, samplePixels, type PixelSamples } from '../../src/engine/training/pixelHeadFit';
import { SeededRandom } from '../../src/masks/seededRandom';
import type { MaskImage, RgbImage } from '../../src/masks/maskImage';

/** A noisy grey image with random 2-pixel dark lines (membranes, label 1) on a lighter ground (label 0). */
function membranes(width: number, height: number, seed: number): { image: RgbImage; mask: MaskImage } {
  const rng = new SeededRandom(seed);
  const mask = new Uint8Array(width * height);
  for (let k = 0; k < 6; k++) {
    // Lines at random angles: x cos a + y sin a = d, 2 pixels wide.
    const a = rng.range(0, Math.PI);
    const d = rng.range(0, Math.hypot(width, height) * 0.7);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) if (Math.abs(x * Math.cos(a) + y * Math.sin(a) - d) < 1) mask[y * width + x] = 1;
  }
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const base = mask[i] ? 70 : 150;
    // Slow shading and pixel noise, so intensity alone does not separate the classes.
    const shade = 40 * Math.sin(((i % width) / width) * Math.PI);
    const v = Math.max(0, Math.min(255, Math.round(base + shade + 25 * rng.normal())));
    data.fill(v, i * 3, i * 3 + 3);
  }
  return { image: { width, height, data }, mask: { width, height, data: mask } };
}

test('pixel features computed in bands of rows equal those of the whole image', () => {
  // Not square, taller than two halos, with a band that starts inside the image and one at each border.
  const { image } = membranes(53, 4 * FEATURE_HALO + 17, 1);
  const whole = pixelFeatures(image);
  assert.equal(whole.length, PIXEL_FEATURE_COUNT);
  const cuts = [0, 5, FEATURE_HALO + 9, 3 * FEATURE_HALO, image.height];
  for (let b = 0; b + 1 < cuts.length; b++) {
    const band = pixelFeatures(image, cuts[b], cuts[b + 1]);
    for (let f = 0; f < PIXEL_FEATURE_COUNT; f++) {
      assert.equal(band[f].length, (cuts[b + 1] - cuts[b]) * image.width);
      for (let i = 0; i < band[f].length; i++) {
        const want = whole[f][cuts[b] * image.width + i];
        assert.ok(Math.abs(band[f][i] - want) < 1e-5, `feature ${f}, band ${b}, pixel ${i}: ${band[f][i]} vs ${want}`);
      }
    }
  }
});

test('the pixel head learns thin dark lines that an uninformative network misses, on an image it did not see', async () => {
  const classes = 2;
  const uniform = (n: number): Float32Array => new Float32Array(n * classes).fill(0.5);
  const train = membranes(96, 80, 2);
  const samples: PixelSamples = { xs: [], ys: [] };
  await samplePixels({ ...train, probs: uniform(96 * 80) }, classes, 6000, new SeededRandom(3), samples);
  assert.equal(samples.xs.length, 6000);
  const fit = await fitPixelHead(
    samples,
    classes,
    {
      samples: 6000,
      hidden: 16,
      epochs: 30,
      batch: 64,
      learningRate: 0.01,
      weightDecay: 1e-4,
      seed: 0,
    },
    undefined,
    'js',
  );
  assert.ok(fit);
  assert.ok(fit.loss < fit.firstLoss, `the loss falls: ${fit.firstLoss} -> ${fit.loss}`);
  assert.equal(pixelHeadProblem(fit.head, classes), null);
  const test = membranes(120, 72, 9);
  const probs = applyPixelHead(fit.head, test.image, uniform(120 * 72));
  let right = 0;
  let lineRight = 0;
  let lines = 0;
  for (let i = 0; i < 120 * 72; i++) {
    const label = probs[i * 2 + 1] > probs[i * 2] ? 1 : 0;
    if (label === test.mask.data[i]) right++;
    if (test.mask.data[i] === 1) {
      lines++;
      if (label === 1) lineRight++;
    }
  }
  // Everything as ground (what the uniform network gives) is right on the ground only.
  const ground = 1 - lines / (120 * 72);
  assert.ok(ground < 0.95, `the test image holds lines: ${lines}`);
  assert.ok(right / (120 * 72) > 0.95, `pixels right: ${right / (120 * 72)} (all ground: ${ground})`);
  assert.ok(lineRight / lines > 0.7, `line pixels found: ${lineRight / lines}`);
});

test('the pixel head reads the network where the image cannot tell: it follows confident probabilities', async () => {
  const classes = 3;
  // A flat grey image: features say nothing, so the head must learn to follow the network's probabilities.
  const w = 40;
  const h = 30;
  const image: RgbImage = { width: w, height: h, data: new Uint8Array(w * h * 3).fill(128) };
  const rng = new SeededRandom(5);
  const label = Uint8Array.from({ length: w * h }, () => rng.int(0, classes));
  label[0] = 255; // ignore: never drawn
  const probs = new Float32Array(w * h * classes);
  for (let i = 0; i < w * h; i++)
    for (let c = 0; c < classes; c++) probs[i * classes + c] = c === label[i] % classes ? 0.8 : 0.1;
  const samples: PixelSamples = { xs: [], ys: [] };
  await samplePixels({ image, mask: { width: w, height: h, data: label }, probs }, classes, 3000, rng, samples);
  assert.ok(
    samples.ys.every((y) => y < classes),
    'ignore pixels are not drawn',
  );
  const fit = await fitPixelHead(
    samples,
    classes,
    {
      samples: 3000,
      hidden: 8,
      epochs: 20,
      batch: 64,
      learningRate: 0.01,
      weightDecay: 0,
      seed: 1,
    },
    undefined,
    'js',
  );
  assert.ok(fit);
  const out = applyPixelHead(fit.head, image, probs);
  let agree = 0;
  for (let i = 1; i < w * h; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (out[i * classes + c] > out[i * classes + best]) best = c;
    if (best === label[i]) agree++;
  }
  assert.equal(agree, w * h - 1);
});

test('a stored pixel head that does not fit the model is named, not run', () => {
  const good = {
    features: PIXEL_FEATURE_SET,
    inputs: PIXEL_FEATURE_COUNT + 2,
    hidden: 1,
    classes: 2,
    mean: new Array<number>(PIXEL_FEATURE_COUNT + 2).fill(0),
    scale: new Array<number>(PIXEL_FEATURE_COUNT + 2).fill(1),
    w1: new Array<number>(PIXEL_FEATURE_COUNT + 2).fill(0),
    b1: [0],
    w2: [0, 0],
    b2: [0, 0],
  };
  assert.equal(pixelHeadProblem(good, 2), null);
  assert.match(pixelHeadProblem(good, 3) ?? '', /inputs has/);
  assert.match(pixelHeadProblem({ ...good, features: 'other' }, 2) ?? '', /fitted on features "other"/);
  assert.match(pixelHeadProblem({ ...good, w2: [0] }, 2) ?? '', /w2 has 1 values where 2/);
  assert.match(pixelHeadProblem({ ...good, b2: [0, NaN] }, 2) ?? '', /not a number/);
});
