// One optimiser step of a fine-tune: a batch of crops as tensors, the segmentation loss plus L2 decay on the
// convolution kernels, minimised over the trainable variables.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Crop } from './augment';
import { segmentationLoss } from './losses';
import type { GradientPeer } from './gradientPeer';
import { onnxStep, type OnnxTrainer } from './onnxTraining';

export interface StepLoss {
  dice: number;
  boundary: number;
  weightDecay: number;
}

/** The batch's crops (all `size` x `size`) as image, label and boundary-band tensors. */
export function cropBatch(crops: Crop[], size: number): { x: tf.Tensor4D; y: tf.Tensor3D; band: tf.Tensor3D } {
  const n = crops.length;
  const area = size * size;
  const xs = new Float32Array(n * area * 3);
  const ys = new Int32Array(n * area);
  const bands = new Float32Array(n * area);
  crops.forEach((c, i) => {
    xs.set(c.x, i * area * 3);
    ys.set(c.y, i * area);
    bands.set(c.band, i * area);
  });
  return {
    x: tf.tensor4d(xs, [n, size, size, 3]),
    y: tf.tensor3d(ys, [n, size, size], 'int32'),
    band: tf.tensor3d(bands, [n, size, size]),
  };
}

/**
 * The batch's loss as a function for the optimiser (the segmentation loss plus L2 decay on `kernels`), over
 * the crops' tensors; `dispose` frees those tensors.
 */
export function stepLossFunction(
  model: tfl.LayersModel,
  kernels: tf.Tensor[],
  crops: Crop[],
  size: number,
  weights: StepLoss,
): { loss: () => tf.Scalar; dispose: () => void } {
  const { x, y, band } = cropBatch(crops, size);
  const loss = (): tf.Scalar => {
    const probs = model.apply(x, { training: true }) as tf.Tensor4D;
    let l = segmentationLoss(probs, y, band, { dice: weights.dice, boundary: weights.boundary });
    if (weights.weightDecay > 0) {
      const l2 = tf.addN(kernels.map((k) => tf.sum(tf.square(k))));
      l = tf.add(l, tf.mul(l2, weights.weightDecay / 2));
    }
    return l as tf.Scalar;
  };
  return { loss, dispose: () => tf.dispose([x, y, band]) };
}

/** What every step of a fine-tune shares: the network, its optimiser and variables, the crop size, the loss. */
export interface StepContext {
  model: tfl.LayersModel;
  optimizer: tf.Optimizer;
  /** The variables to train, in the optimiser's order. */
  trainable: tf.Variable[];
  /** The kernels under L2 decay. */
  kernels: tf.Tensor[];
  size: number;
  weights: StepLoss;
  /**
   * The training graph through onnxruntime, when the steps run there (onnxTraining.ts): its own optimiser
   * (not `optimizer`) applies the gradients, and the model's variables take the weights at its `sync()`.
   */
  onnx?: OnnxTrainer | null;
}

/**
 * One step on the crops: through onnxruntime's training graph when the context has one; else split with the
 * gradient peer when there is one (`sendAll`: every weight goes to it, as
 * at the first step); returns the batch's loss (NaN when the optimiser returned none).
 */
export async function trainStep(
  s: StepContext,
  crops: Crop[],
  peer: GradientPeer | null = null,
  sendAll = false,
): Promise<number> {
  if (s.onnx) return onnxStep(s.onnx, s.kernels, s.weights.weightDecay, crops);
  if (peer && crops.length >= 2) return parallelStep(s, crops, peer, sendAll);
  const { model, optimizer, trainable, kernels, size, weights } = s;
  const f = stepLossFunction(model, kernels, crops, size, weights);
  const lossT = optimizer.minimize(f.loss, true, trainable);
  f.dispose();
  const loss = lossT ? (await lossT.data())[0] : NaN;
  lossT?.dispose();
  return loss;
}

/**
 * One step with the batch split between this thread and the gradient peer: the second half of the crops goes
 * to the peer, the gradients of both halves are averaged (weighted by crops) and applied here, and the
 * batch-norm statistics each half moved are averaged too.
 */
async function parallelStep(s: StepContext, crops: Crop[], peer: GradientPeer, sendAll: boolean): Promise<number> {
  const { model, optimizer, trainable, kernels, size, weights } = s;
  const mine = crops.slice(0, Math.ceil(crops.length / 2));
  const theirs = crops.slice(mine.length);
  const r = await peer.step(
    trainable,
    theirs,
    size,
    weights,
    () => {
      const f = stepLossFunction(model, kernels, mine, size, weights);
      try {
        return tf.variableGrads(f.loss, trainable);
      } finally {
        f.dispose();
      }
    },
    sendAll,
  );
  const a = mine.length / crops.length;
  const b = 1 - a;
  // As minimize does, a variable the loss does not reach (no gradient) is left out.
  const averaged = trainable.flatMap((v, k) => {
    const g = r.local.grads[v.name];
    if (!g) return [];
    return [{ name: v.name, tensor: tf.tidy(() => tf.add(tf.mul(g, a), tf.mul(tf.tensor(r.grads[k], v.shape), b))) }];
  });
  optimizer.applyGradients(averaged);
  r.report.forEach((variable, k) => {
    const w = variable.read();
    const next = tf.tidy(() => tf.add(tf.mul(w, a), tf.mul(tf.tensor(r.reported[k], w.shape), b)));
    variable.write(next);
    next.dispose();
  });
  const localLoss = (await r.local.value.data())[0];
  tf.dispose([r.local.value, ...Object.values(r.local.grads), ...averaged.map((g) => g.tensor)]);
  return a * localLoss + b * r.loss;
}
