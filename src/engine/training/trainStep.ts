// One optimiser step of a fine-tune: a batch of crops as tensors, the segmentation loss plus L2 decay on the
// convolution kernels, minimised over the trainable variables.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Crop } from './augment';
import { segmentationLoss } from './losses';

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

/** One step on the crops; returns the batch's loss (NaN when the optimiser returned none). */
export async function trainStep(
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
  trainable: tf.Variable[],
  kernels: tf.Tensor[],
  crops: Crop[],
  size: number,
  weights: StepLoss,
): Promise<number> {
  const { x, y, band } = cropBatch(crops, size);
  const lossT = optimizer.minimize(
    () => {
      const probs = model.apply(x, { training: true }) as tf.Tensor4D;
      let loss = segmentationLoss(probs, y, band, { dice: weights.dice, boundary: weights.boundary });
      if (weights.weightDecay > 0) {
        const l2 = tf.addN(kernels.map((k) => tf.sum(tf.square(k))));
        loss = tf.add(loss, tf.mul(l2, weights.weightDecay / 2));
      }
      return loss as tf.Scalar;
    },
    true,
    trainable,
  );
  tf.dispose([x, y, band]);
  const loss = lossT ? (await lossT.data())[0] : NaN;
  lossT?.dispose();
  return loss;
}
