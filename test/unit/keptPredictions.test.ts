import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeptPredictions } from '../../src/modelServer/keptPredictions';
import type { RgbImage } from '../../src/masks/maskImage';
import type { Prediction, TileOptions } from '../../src/engine/inference/tiledPredict';

const options: TileOptions = { stride: 16, tileSize: 512, overlap: 128, margin: 32 };

function image(seed: number, width = 8, height = 6): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 7) % 256;
  return { width, height, data };
}

/** A predictor that counts its calls and answers a fresh prediction each time. */
function counter(classes = 2): { calls: number; predict: (img: RgbImage) => () => Promise<Prediction> } {
  const c = {
    calls: 0,
    predict: (img: RgbImage) => async (): Promise<Prediction> => {
      c.calls++;
      const n = img.width * img.height;
      return {
        width: img.width,
        height: img.height,
        classMap: new Uint8Array(n).fill(c.calls % 2),
        confidence: new Uint8Array(n),
        probabilities: new Float32Array(n * classes),
      };
    },
  };
  return c;
}

test('kept predictions: walking down a sequence, the neighbour is the frame predicted just before', async () => {
  const kept = new KeptPredictions<object>();
  const model = {};
  const c = counter();
  const frames = [0, 1, 2, 3, 4, 5].map((j) => image(j));
  // Each request predicts its frame, then its neighbour (the frame before): only the first neighbour is new.
  for (let t = 1; t < frames.length; t++) {
    const before = c.calls;
    const own = await kept.get(model, frames[t], options, true, c.predict(frames[t]));
    const neighbour = await kept.get(model, frames[t - 1], options, true, c.predict(frames[t - 1]));
    assert.equal(c.calls - before, t === 1 ? 2 : 1, `frame ${t}`);
    assert.ok(own !== neighbour);
  }
});

test('kept predictions are told apart by model, pixels and options; the largest are not kept', async () => {
  const kept = new KeptPredictions<object>(3, 8 * 6 * 2);
  const c = counter();
  const a = image(1);
  const first = await kept.get({}, a, options, true, c.predict(a));
  const model = {};
  const m1 = await kept.get(model, a, options, true, c.predict(a));
  assert.equal(c.calls, 2, 'another model object predicts afresh');
  assert.ok(m1 !== first);
  assert.equal(await kept.get(model, a, options, true, c.predict(a)), m1);
  assert.equal(c.calls, 2, 'the same model, pixels and options: kept');
  // The same pixels in another object (a file read again) are the same image.
  assert.equal(await kept.get(model, { ...a, data: a.data.slice() }, options, true, c.predict(a)), m1);
  // An edited image: one pixel changed.
  const edited = { ...a, data: a.data.slice() };
  edited.data[5] ^= 1;
  await kept.get(model, edited, options, true, c.predict(edited));
  assert.equal(c.calls, 3, 'other pixels');
  await kept.get(model, a, { ...options, mirror: false }, true, c.predict(a));
  assert.equal(c.calls, 4, 'other options');
  await kept.get(model, a, options, false, c.predict(a));
  assert.equal(c.calls, 5, 'without the probabilities');
  // Three kept per model: the oldest of them (the first, m1) is gone.
  await kept.get(model, a, options, true, c.predict(a));
  assert.equal(c.calls, 6, 'the oldest was let go');
  // A prediction whose probabilities are over the limit is never kept.
  const big = counter(3);
  const b = image(2);
  await kept.get(model, b, options, true, big.predict(b));
  await kept.get(model, b, options, true, big.predict(b));
  assert.equal(big.calls, 2);
});
