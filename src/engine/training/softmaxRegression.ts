// The context head's solver (contextHeadFit.ts): L2-regularised softmax regression on a standardised design
// matrix (rows x dims) with soft labels, by L-BFGS. Each objective evaluation reads the whole matrix twice
// (X W and X^T G), tens of MiB: 45 ms for 16k x 1152 with 11 classes on one thread of TF.js wasm here, about
// 20 ms through onnxruntime-node (both cores, native kernels; the matrix held once as a constant of a small
// graph). onnxruntime when it loads, TF.js otherwise: the same arithmetic, equal to float rounding (tested).
// Full-batch Adam (300 steps at 0.01) reached the optimum's neighbourhood in about 100 steps and then
// wandered around it; L-BFGS gets as close in 30-90 evaluations and stops there (docs/benchmarks.md).
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
  /** L-BFGS iterations at most (0: the starting point, the prior alone). */
  iterations: number;
  /** Stop once 5 iterations lowered the objective by less than this fraction of it. */
  tolerance: number;
}

export interface SoftmaxRegressionFit {
  /** dims x classes. */
  weights: Float32Array;
  bias: Float32Array;
  /** Mean cross-entropy with the soft labels at the end, plus the L2 term. */
  loss: number;
  /** L-BFGS iterations run, and objective evaluations (one gradient each). */
  iterations: number;
  evaluations: number;
  runtime: 'onnxruntime' | 'tfjs';
}

/** The objective's parts at (W, b): the gradient of the mean cross-entropy (without the L2 term) and its value. */
type Gradient = (w: Float32Array, b: Float32Array) => Promise<{ gW: Float32Array; gb: Float32Array; ce: number }>;

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

/**
 * The ONNX graph of one gradient: inputs W [dims, classes] and b [classes]; the matrix and the labels are
 * constants. Outputs gW = X^T (softmax(XW + b) - Y) / rows (the L2 term is added outside), gb (its column
 * sums) and ce, the mean cross-entropy.
 */
export function softmaxGradientGraph(problem: SoftmaxRegressionProblem): Uint8Array {
  const { rows, dims, classes } = problem;
  const g = new Proto().string(2, 'maskloop-context-fit');
  const inits = [
    floatTensor('X', [rows, dims], problem.x),
    floatTensor('Y', [rows, classes], problem.y),
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
    node('Gemm', ['X', 'g'], ['gW'], 'gradient/W', [{ name: 'transA', i: 1 }]),
    node('ReduceSum', ['g', 'axis0'], ['gb'], 'gradient/b', [{ name: 'keepdims', i: 0 }]),
    node('LogSoftmax', ['zb'], ['logp'], 'log_softmax', [{ name: 'axis', i: 1 }]),
    node('Mul', ['logp', 'Y'], ['ylogp'], 'ce/Mul'),
    node('ReduceSum', ['ylogp'], ['ce_sum'], 'ce/Sum', [{ name: 'keepdims', i: 0 }]),
    node('Mul', ['ce_sum', 'minus_inv_rows'], ['ce'], 'ce/mean'),
  ];
  nodes.forEach((n) => g.message(1, n));
  inits.forEach((t) => g.message(5, t));
  g.message(11, tensorValueInfo('W', [dims, classes])).message(11, tensorValueInfo('b', [classes]));
  g.message(12, tensorValueInfo('gW', [dims, classes]))
    .message(12, tensorValueInfo('gb', [classes]))
    .message(12, tensorValueInfo('ce', []));
  return onnxModel(g);
}

/** Objective evaluations L-BFGS keeps (pairs of steps and gradient changes). */
const MEMORY = 10;

/**
 * L-BFGS (two-loop recursion, the last MEMORY pairs, backtracking to the Armijo condition) on the L2-regularised
 * mean cross-entropy, in float64, from W = 0 and b = bias0. The L2 term and its gradient are added here; the
 * bias is not penalised. Deterministic for a deterministic gradient. `check` runs every 5 iterations.
 */
async function lbfgs(
  problem: SoftmaxRegressionProblem,
  settings: SoftmaxRegressionSettings,
  gradient: Gradient,
  check: () => void,
): Promise<Omit<SoftmaxRegressionFit, 'runtime'>> {
  const { dims, classes } = problem;
  const nw = dims * classes;
  const n = nw + classes;
  const w32 = new Float32Array(nw);
  const b32 = new Float32Array(classes);
  let evaluations = 0;
  const evaluate = async (p: Float64Array): Promise<{ f: number; g: Float64Array }> => {
    evaluations++;
    for (let i = 0; i < nw; i++) w32[i] = p[i];
    for (let c = 0; c < classes; c++) b32[c] = p[nw + c];
    const { gW, gb, ce } = await gradient(w32, b32);
    const g = new Float64Array(n);
    let reg = 0;
    for (let i = 0; i < nw; i++) {
      reg += w32[i] * w32[i];
      g[i] = gW[i] + 2 * settings.l2 * w32[i];
    }
    for (let c = 0; c < classes; c++) g[nw + c] = gb[c];
    return { f: ce + settings.l2 * reg, g };
  };
  const dot = (a: Float64Array, b: Float64Array): number => {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[i] * b[i];
    return s;
  };
  const p = new Float64Array(n);
  p.set(problem.bias0, nw);
  let { f, g } = await evaluate(p);
  const history: number[] = [f];
  const pairs: { s: Float64Array; y: Float64Array; rho: number }[] = [];
  const q = new Float64Array(n);
  const next = new Float64Array(n);
  let iterations = 0;
  while (iterations < settings.iterations) {
    if (iterations % 5 === 4) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      check();
    }
    // The direction -H g by the two-loop recursion; the first step is scaled to unit length.
    q.set(g);
    const alpha: number[] = [];
    for (let k = pairs.length - 1; k >= 0; k--) {
      alpha[k] = pairs[k].rho * dot(pairs[k].s, q);
      for (let i = 0; i < n; i++) q[i] -= alpha[k] * pairs[k].y[i];
    }
    const last = pairs[pairs.length - 1];
    const gamma = last ? 1 / (last.rho * dot(last.y, last.y)) : 1 / Math.sqrt(dot(g, g) || 1);
    for (let i = 0; i < n; i++) q[i] *= gamma;
    for (let k = 0; k < pairs.length; k++) {
      const beta = pairs[k].rho * dot(pairs[k].y, q);
      for (let i = 0; i < n; i++) q[i] += pairs[k].s[i] * (alpha[k] - beta);
    }
    const slope = -dot(g, q);
    if (!(slope < 0)) break; // not a descent direction: at the optimum to float precision
    let step = 1;
    let found: { f: number; g: Float64Array } | null = null;
    for (let tries = 0; tries < 20 && !found; tries++, step /= 2) {
      for (let i = 0; i < n; i++) next[i] = p[i] - step * q[i];
      const at = await evaluate(next);
      if (at.f <= f + 1e-4 * step * slope) found = at;
    }
    if (!found) break; // no step lowers the objective: converged to float precision
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = next[i] - p[i];
      y[i] = found.g[i] - g[i];
    }
    const sy = dot(s, y);
    if (sy > 1e-12) {
      pairs.push({ s, y, rho: 1 / sy });
      if (pairs.length > MEMORY) pairs.shift();
    }
    p.set(next);
    ({ f, g } = found);
    iterations++;
    history.push(f);
    if (history.length > 5 && history[history.length - 6] - f < settings.tolerance * Math.abs(f)) break;
  }
  return {
    weights: Float32Array.from(p.subarray(0, nw)),
    bias: Float32Array.from(p.subarray(nw)),
    loss: f,
    iterations,
    evaluations,
  };
}

async function fitOnnx(
  o: typeof Ort,
  problem: SoftmaxRegressionProblem,
  settings: SoftmaxRegressionSettings,
  check: () => void,
): Promise<SoftmaxRegressionFit> {
  const { dims, classes } = problem;
  const session = await o.InferenceSession.create(softmaxGradientGraph(problem), sessionOptions(false));
  try {
    const gradient: Gradient = async (w, b) => {
      const out = await session.run({
        W: new o.Tensor('float32', w, [dims, classes]),
        b: new o.Tensor('float32', b, [classes]),
      });
      return { gW: out.gW.data as Float32Array, gb: out.gb.data as Float32Array, ce: (out.ce.data as Float32Array)[0] };
    };
    return { ...(await lbfgs(problem, settings, gradient, check)), runtime: 'onnxruntime' };
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
  // autodiff transposed the 17k x 768 matrix at every step.
  const XT = tf.transpose(X) as tf.Tensor2D;
  try {
    const gradient: Gradient = async (w, b) => {
      const [gW, gb, ce] = tf.tidy(() => {
        const logits = tf.add(tf.matMul(X, tf.tensor2d(w, [dims, classes])), tf.tensor1d(b));
        const g = tf.div(tf.sub(tf.softmax(logits), Y), rows);
        const ce = tf.div(tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), Y))), rows);
        return [tf.matMul(XT, g), tf.sum(g, 0), ce];
      });
      try {
        // Read asynchronously: GPU backends cannot read synchronously under Node.
        const [a, c, e] = await Promise.all([gW.data(), gb.data(), ce.data()]);
        return { gW: a as Float32Array, gb: c as Float32Array, ce: e[0] };
      } finally {
        tf.dispose([gW, gb, ce]);
      }
    };
    return { ...(await lbfgs(problem, settings, gradient, check)), runtime: 'tfjs' };
  } finally {
    tf.dispose([X, Y, XT]);
  }
}

/**
 * Fits the regression: the gradients through onnxruntime when it loads and TF.js inference is not forced
 * (`runtime` may force either), else TF.js; the solver is the same. `check` is called every 5 iterations and
 * may throw (a cancel).
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
