import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { resolveBackend } from '../../src/engine/backends';

// Every gradient kernel maskloop registers is checked against another backend and against finite
// differences (float64 in JS), for the shapes the networks use: 3x3 stride 1 and 2, 1x1 stride 2,
// depthwise 3x3 stride 1 and 2, and nearest-neighbour upsampling with a batch of 2.

function rand(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, 'float32', seed);
}

async function gradsOn(
  backend: string,
  f: (x: tf.Tensor, w: tf.Tensor) => tf.Scalar,
  x: Float32Array,
  xs: number[],
  w: Float32Array,
  ws: number[],
): Promise<[Float32Array, Float32Array]> {
  await tf.setBackend(backend);
  const xt = tf.tensor(x, xs);
  const wt = tf.tensor(w, ws);
  const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => f(a, b));
  const [gx, gw] = g([xt, wt]);
  const out: [Float32Array, Float32Array] = [(await gx.data()) as Float32Array, (await gw.data()) as Float32Array];
  tf.dispose([xt, wt, gx, gw]);
  return out;
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  let scale = 1e-6;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]) / scale);
  return max;
}

/** Central finite differences of f at a few coordinates of w, in float32 forward passes. */
async function finiteDiff(
  backend: string,
  f: (x: tf.Tensor, w: tf.Tensor) => tf.Scalar,
  x: Float32Array,
  xs: number[],
  w: Float32Array,
  ws: number[],
  which: 'x' | 'w',
  idx: number[],
): Promise<number[]> {
  await tf.setBackend(backend);
  const eps = 1e-2;
  const out: number[] = [];
  for (const i of idx) {
    const val = async (delta: number): Promise<number> => {
      const xx = Float32Array.from(x);
      const ww = Float32Array.from(w);
      (which === 'x' ? xx : ww)[i] += delta;
      const r = tf.tidy(() => f(tf.tensor(xx, xs), tf.tensor(ww, ws)));
      const v = (await r.data())[0];
      r.dispose();
      return v;
    };
    out.push(((await val(eps)) - (await val(-eps))) / (2 * eps));
  }
  return out;
}

const cases: { name: string; xs: number[]; ws: number[]; f: (x: tf.Tensor, w: tf.Tensor) => tf.Scalar }[] = [
  {
    name: 'conv 3x3 stride 1 same',
    xs: [2, 9, 7, 3],
    ws: [3, 3, 3, 4],
    f: (x, w) => tf.sum(tf.square(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'))),
  },
  {
    name: 'conv 3x3 stride 2 same (odd size)',
    xs: [2, 9, 7, 3],
    ws: [3, 3, 3, 5],
    f: (x, w) => tf.sum(tf.square(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'))),
  },
  {
    name: 'conv 3x3 stride 2 same (even size)',
    xs: [1, 8, 8, 2],
    ws: [3, 3, 2, 3],
    f: (x, w) => tf.sum(tf.square(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'))),
  },
  {
    name: 'conv 1x1 stride 1 (the direct product, no im2col)',
    xs: [2, 6, 5, 7],
    ws: [1, 1, 7, 3],
    f: (x, w) => tf.sum(tf.square(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'))),
  },
  {
    name: 'conv 1x1 stride 2 projection',
    xs: [2, 8, 6, 4],
    ws: [1, 1, 4, 6],
    f: (x, w) => tf.sum(tf.square(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'))),
  },
  {
    name: 'conv 3x3 stride 1 valid',
    xs: [1, 7, 7, 2],
    ws: [3, 3, 2, 2],
    f: (x, w) => tf.sum(tf.square(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid'))),
  },
  {
    name: 'depthwise 3x3 stride 1 same, batch 2',
    xs: [2, 7, 6, 4],
    ws: [3, 3, 4, 1],
    f: (x, w) => tf.sum(tf.square(tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'))),
  },
  {
    name: "depthwise 3x3 stride 2 valid after MobileNetV2's (0,1) padding",
    xs: [2, 8, 8, 3],
    ws: [3, 3, 3, 1],
    f: (x, w) =>
      tf.sum(
        tf.square(
          tf.depthwiseConv2d(
            tf.pad(x as tf.Tensor4D, [
              [0, 0],
              [0, 1],
              [0, 1],
              [0, 0],
            ]),
            w as tf.Tensor4D,
            2,
            'valid',
          ),
        ),
      ),
  },
  {
    name: 'nearest upsampling x2, batch 2',
    xs: [2, 3, 4, 2],
    ws: [2, 6, 8, 2],
    f: (x, w) => tf.sum(tf.mul(tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [6, 8]), w)),
  },
  {
    // Batch norm in training mode: statistics from the batch, so the gradient flows through mean and variance.
    name: "batch norm with batch statistics (maskloop's FusedBatchNorm gradient)",
    xs: [2, 5, 4, 3],
    ws: [3],
    f: (x, w) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      const y = tf.batchNorm(
        x as tf.Tensor4D,
        mean,
        variance,
        tf.fill([3], 0.1) as tf.Tensor1D,
        w as tf.Tensor1D,
        1e-3,
      );
      return tf.sum(tf.mul(y, tf.randomUniform(x.shape, -1, 1, 'float32', 9)));
    },
  },
];

test('gradients agree across wasm and cpu and with finite differences', async (t) => {
  await resolveBackend('wasm'); // loads wasm and registers maskloop's kernels
  for (const c of cases) {
    await t.test(c.name, async () => {
      const x = (await rand(c.xs, 1).data()) as Float32Array;
      const w = (await rand(c.ws, 2).data()) as Float32Array;
      const [wx, ww] = await gradsOn('wasm', c.f, x, c.xs, w, c.ws);
      const [cx, cw] = await gradsOn('cpu', c.f, x, c.xs, w, c.ws);
      assert.ok(maxRelDiff(wx, cx) < 1e-4, `dx wasm vs cpu: ${maxRelDiff(wx, cx)}`);
      assert.ok(maxRelDiff(ww, cw) < 1e-4, `dw wasm vs cpu: ${maxRelDiff(ww, cw)}`);
      // Finite differences at coordinates spread over the whole tensor (the last batch item included).
      const pick = (n: number): number[] => [0, Math.floor(n / 3), Math.floor(n / 2) + 1, n - 1];
      for (const [which, analytic, n] of [
        ['x', cx, x.length],
        ['w', cw, w.length],
      ] as const) {
        const idx = pick(n);
        const numeric = await finiteDiff('cpu', c.f, x, c.xs, w, c.ws, which, idx);
        idx.forEach((i, k) => {
          const tol = 2e-2 * Math.max(1, Math.abs(numeric[k]));
          assert.ok(
            Math.abs(analytic[i] - numeric[k]) < tol,
            `${which}[${i}]: analytic ${analytic[i]} vs numeric ${numeric[k]}`,
          );
        });
      }
    });
  }
  await tf.setBackend('wasm');
});
