// The context head's solver (contextHeadFit.ts): L2-regularised softmax regression on a standardised design
// matrix (rows x dims) with soft labels, full-batch Adam. Each step reads the whole matrix twice (X W and
// X^T G), tens of MiB, so it is bound by memory and by one thread on TF.js wasm: 45 ms a step for 16k x 1152
// with 11 classes here. Through onnxruntime-node (both cores, native kernels; the matrix, its transpose and
// the labels fed as inputs of a small graph, the transpose made once in JS) a step is 8-9 ms. As constants of
// the graph they cost 1.7-1.9 s to serialise, load and fold when the session was made, for the same
// arithmetic. onnxruntime when it loads, TF.js otherwise:
// the same arithmetic, equal to float rounding (tested). L-BFGS and 100 Adam steps were tried: both end
// nearer the regularised optimum, and both left more to correct on held-out street frames (docs/benchmarks.md).
import * as tf from '@tensorflow/tfjs-core';
import type * as Ort from 'onnxruntime-node';
import { Proto, floatTensor, int64Tensor, node, onnxModel, tensorValueInfo } from '../inference/onnxProto';
import { inferenceChoice, loadOrt, sessionOptions } from '../inference/onnxInference';

export interface SoftmaxRegressionProblem {
  /** Standardised design matrix, rows x dims (row-major). */
  x: Float32Array;
  /** Soft labels, rows x classes, each row summing to 1. */
  y: Float32Array;
  rows: number;
  dims: number;
  classes: number;
  /** The bias's starting value (the log class prior). */
  bias0: Float32Array;
}

export interface SoftmaxRegressionSettings {
  l2: number;
  steps: number;
  learningRate: number;
}

export interface SoftmaxRegressionFit {
  /** dims x classes. */
  weights: Float32Array;
  bias: Float32Array;
  /** Mean cross-entropy with the soft labels at the end, plus the L2 term. */
  loss: number;
  runtime: 'onnxruntime' | 'tfjs';
}

const [BETA1, BETA2, EPS] = [0.9, 0.999, 1e-7];

/** Standardises each column of a rows x dims matrix in place; returns the means and the spreads (sd + 1e-3). */
export function standardiseColumns(
  x: Float32Array,
  rows: number,
  dims: number,
): { mean: Float32Array; spread: Float32Array } {
  const sum = new Float64Array(dims);
  for (let r = 0; r < rows; r++) for (let j = 0; j < dims; j++) sum[j] += x[r * dims + j];
  const mean = new Float64Array(dims).map((_, j) => sum[j] / rows);
  const sq = new Float64Array(dims);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < dims; j++) {
      const d = x[r * dims + j] - mean[j];
      sq[j] += d * d;
    }
  const spread = new Float64Array(dims).map((_, j) => Math.sqrt(sq[j] / rows) + 1e-3);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < dims; j++) x[r * dims + j] = (x[r * dims + j] - mean[j]) / spread[j];
  return { mean: Float32Array.from(mean), spread: Float32Array.from(spread) };
}

/** One Adam step on `p` in place (TF.js's Adam: bias-corrected learning rate, epsilon outside the root). */
function adamStep(p: Float32Array, m: Float32Array, v: Float32Array, grad: Float32Array, lr: number): void {
  for (let i = 0; i < p.length; i++) {
    m[i] = BETA1 * m[i] + (1 - BETA1) * grad[i];
    v[i] = BETA2 * v[i] + (1 - BETA2) * grad[i] * grad[i];
    p[i] -= (m[i] * lr) / (Math.sqrt(v[i]) + EPS);
  }
}

/** The bias-corrected learning rate of Adam at `step` (1-based). */
function stepRate(learningRate: number, step: number): number {
  return (learningRate * Math.sqrt(1 - BETA2 ** step)) / (1 - BETA1 ** step);
}

/**
 * The ONNX graph of one gradient for a problem of this shape: inputs X [rows, dims], XT [dims, rows] (its
 * transpose), Y [rows, classes], W [dims, classes] and b [classes]. Outputs gW = X^T (softmax(XW + b) - Y) /
 * rows (the L2 term is added outside), gb (its column sums) and ce, the mean cross-entropy.
 */
export function softmaxGradientGraph(shape: { rows: number; dims: number; classes: number }): Uint8Array {
  const { rows, dims, classes } = shape;
  const g = new Proto().string(2, 'maskloop-context-fit');
  const inits = [
    floatTensor('inv_rows', [], Float32Array.of(1 / rows)),
    floatTensor('minus_inv_rows', [], Float32Array.of(-1 / rows)),
    int64Tensor('axis0', [0]),
  ];
  const nodes = [
    node('MatMul', ['X', 'W'], ['z'], 'logits/MatMul'),
    node('Add', ['z', 'b'], ['zb'], 'logits/Add'),
    node('Softmax', ['zb'], ['p'], 'softmax', [{ name: 'axis', i: 1 }]),
    node('Sub', ['p', 'Y'], ['d'], 'residual'),
    node('Mul', ['d', 'inv_rows'], ['g'], 'residual/mean'),
    // X^T fed as it is, so each step reads it row by row: Gemm with transA on X took 19 ms a step, and
    // (g^T X)^T 13 ms, against 8-9 ms.
    node('MatMul', ['XT', 'g'], ['gW'], 'gradient/W'),
    node('ReduceSum', ['g', 'axis0'], ['gb'], 'gradient/b', [{ name: 'keepdims', i: 0 }]),
    node('LogSoftmax', ['zb'], ['logp'], 'log_softmax', [{ name: 'axis', i: 1 }]),
    node('Mul', ['logp', 'Y'], ['ylogp'], 'ce/Mul'),
    node('ReduceSum', ['ylogp'], ['ce_sum'], 'ce/Sum', [{ name: 'keepdims', i: 0 }]),
    node('Mul', ['ce_sum', 'minus_inv_rows'], ['ce'], 'ce/mean'),
  ];
  nodes.forEach((n) => g.message(1, n));
  inits.forEach((t) => g.message(5, t));
  g.message(11, tensorValueInfo('X', [rows, dims]))
    .message(11, tensorValueInfo('XT', [dims, rows]))
    .message(11, tensorValueInfo('Y', [rows, classes]))
    .message(11, tensorValueInfo('W', [dims, classes]))
    .message(11, tensorValueInfo('b', [classes]));
  g.message(12, tensorValueInfo('gW', [dims, classes]))
    .message(12, tensorValueInfo('gb', [classes]))
    .message(12, tensorValueInfo('ce', []));
  return onnxModel(g);
}

/** The transpose of a rows x dims row-major matrix (dims x rows), in blocks of rows so reads stay in cache. */
export function transposeMatrix(x: Float32Array, rows: number, dims: number): Float32Array {
  const xt = new Float32Array(rows * dims);
  const block = 16;
  for (let r0 = 0; r0 < rows; r0 += block) {
    const r1 = Math.min(rows, r0 + block);
    for (let j = 0; j < dims; j++) {
      let o = j * rows + r0;
      for (let i = r0 * dims + j, r = r0; r < r1; r++, i += dims) xt[o++] = x[i];
    }
  }
  return xt;
}

async function fitOnnx(
  o: typeof Ort,
  problem: SoftmaxRegressionProblem,
  settings: SoftmaxRegressionSettings,
  check: () => void,
): Promise<SoftmaxRegressionFit> {
  const { rows, dims, classes } = problem;
  const session = await o.InferenceSession.create(softmaxGradientGraph(problem), sessionOptions(false));
  try {
    const data = {
      X: new o.Tensor('float32', problem.x, [rows, dims]),
      XT: new o.Tensor('float32', transposeMatrix(problem.x, rows, dims), [dims, rows]),
      Y: new o.Tensor('float32', problem.y, [rows, classes]),
    };
    const w = new Float32Array(dims * classes);
    const b = Float32Array.from(problem.bias0);
    const [mW, vW, mb, vb] = [w.length, w.length, b.length, b.length].map((n) => new Float32Array(n));
    const gradient = async (): Promise<{ gW: Float32Array; gb: Float32Array; ce: number }> => {
      const out = await session.run({
        ...data,
        W: new o.Tensor('float32', w, [dims, classes]),
        b: new o.Tensor('float32', b, [classes]),
      });
      return { gW: out.gW.data as Float32Array, gb: out.gb.data as Float32Array, ce: (out.ce.data as Float32Array)[0] };
    };
    for (let step = 1; step <= settings.steps; step++) {
      if (step % 25 === 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        check();
      }
      const { gW, gb } = await gradient();
      for (let i = 0; i < gW.length; i++) gW[i] += 2 * settings.l2 * w[i];
      const lr = stepRate(settings.learningRate, step);
      adamStep(w, mW, vW, gW, lr);
      adamStep(b, mb, vb, gb, lr);
    }
    const { ce } = await gradient();
    let l2 = 0;
    for (const v of w) l2 += v * v;
    return { weights: w, bias: b, loss: ce + settings.l2 * l2, runtime: 'onnxruntime' };
  } finally {
    await session.release();
  }
}

async function fitTf(
  problem: SoftmaxRegressionProblem,
  settings: SoftmaxRegressionSettings,
  check: () => void,
): Promise<SoftmaxRegressionFit> {
  const { rows, dims, classes } = problem;
  const X = tf.tensor2d(problem.x, [rows, dims]);
  const Y = tf.tensor2d(problem.y, [rows, classes]);
  // The gradient written out (dL/dlogits = (P - Y) / rows) and the transposed matrix made once: tfjs's
  // autodiff transposed the 17k x 768 matrix at every step, and 300 steps on 17 images took about 60 s here.
  const XT = tf.transpose(X) as tf.Tensor2D;
  let W: tf.Tensor = tf.zeros([dims, classes]);
  let b: tf.Tensor = tf.tensor1d(problem.bias0);
  let mW = tf.zerosLike(W);
  let vW = tf.zerosLike(W);
  let mb = tf.zerosLike(b);
  let vb = tf.zerosLike(b);
  try {
    for (let step = 1; step <= settings.steps; step++) {
      if (step % 25 === 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        check();
      }
      const next = tf.tidy(() => {
        const g = tf.div(tf.sub(tf.softmax(tf.add(tf.matMul(X, W), b)), Y), rows);
        const gW = tf.add(tf.matMul(XT, g), tf.mul(W, 2 * settings.l2));
        const gb = tf.sum(g, 0);
        const lr = stepRate(settings.learningRate, step);
        const update = (p: tf.Tensor, m: tf.Tensor, v: tf.Tensor, grad: tf.Tensor): tf.Tensor[] => {
          const m2 = tf.add(tf.mul(m, BETA1), tf.mul(grad, 1 - BETA1));
          const v2 = tf.add(tf.mul(v, BETA2), tf.mul(tf.square(grad), 1 - BETA2));
          return [tf.sub(p, tf.div(tf.mul(m2, lr), tf.add(tf.sqrt(v2), EPS))), m2, v2];
        };
        return [...update(W, mW, vW, gW), ...update(b, mb, vb, gb)];
      });
      tf.dispose([W, mW, vW, b, mb, vb]);
      [W, mW, vW, b, mb, vb] = next;
    }
    const lossTensor = tf.tidy(() =>
      tf.add(tf.losses.softmaxCrossEntropy(Y, tf.add(tf.matMul(X, W), b)), tf.mul(tf.sum(tf.square(W)), settings.l2)),
    );
    // Read asynchronously: GPU backends cannot read synchronously under Node.
    const loss = (await lossTensor.data())[0];
    lossTensor.dispose();
    return {
      weights: (await W.data()) as Float32Array,
      bias: (await b.data()) as Float32Array,
      loss,
      runtime: 'tfjs',
    };
  } finally {
    tf.dispose([X, Y, XT, W, b, mW, vW, mb, vb]);
  }
}

/**
 * Fits the regression: through onnxruntime when it loads and TF.js inference is not forced (`runtime` may
 * force either), else TF.js. `check` is called every 25 steps and may throw (a cancel).
 */
export async function fitSoftmaxRegression(
  problem: SoftmaxRegressionProblem,
  settings: SoftmaxRegressionSettings,
  check: () => void = () => undefined,
  runtime: 'auto' | 'onnxruntime' | 'tfjs' = 'auto',
): Promise<SoftmaxRegressionFit> {
  const o = runtime === 'tfjs' || (runtime === 'auto' && inferenceChoice() === 'tfjs') ? null : loadOrt();
  if (runtime === 'onnxruntime' && !o) throw new Error('onnxruntime-node cannot load');
  return o ? fitOnnx(o, problem, settings, check) : fitTf(problem, settings, check);
}
