import * as tf from '@tensorflow/tfjs-core';
import { IGNORE_INDEX } from '../../masks/maskImage';
import { discOffsets } from '../../masks/boundaryMetrics';

export interface LossWeights {
  /** Weight of the soft Dice term. */
  dice: number;
  /** Weight of the cross-entropy restricted to the boundary band. */
  boundary: number;
}

/**
 * Pixels within `radius` pixels of an edge between two (non-ignore) classes: where boundary errors
 * live, and where the boundary term concentrates the loss.
 */
export function boundaryBand(
  labels: Uint8Array | Int32Array,
  width: number,
  height: number,
  radius: number,
): Float32Array {
  const edge = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const v = labels[i];
      if (v === IGNORE_INDEX) continue;
      const right = x < width - 1 ? labels[i + 1] : v;
      const down = y < height - 1 ? labels[i + width] : v;
      if (right !== v && right !== IGNORE_INDEX) {
        edge[i] = 1;
        edge[i + 1] = 1;
      }
      if (down !== v && down !== IGNORE_INDEX) {
        edge[i] = 1;
        edge[i + width] = 1;
      }
    }
  }
  // Every pixel within the radius's disc of an edge pixel: what a distance transform's "at most the radius"
  // says, in a fraction of its time (edges are sparse; the transform was 40% of a crop's preparation).
  const out = new Float32Array(width * height);
  const r = Math.floor(radius);
  const disc = discOffsets(radius);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      if (!edge[y * width + x]) continue;
      const inside = x >= r && x < width - r && y >= r && y < height - r;
      for (const [dx, dy] of disc) {
        const u = x + dx;
        const v = y + dy;
        if (inside || (u >= 0 && u < width && v >= 0 && v < height)) out[v * width + u] = 1;
      }
    }
  return out;
}

/**
 * Cross-entropy + soft Dice + boundary-weighted cross-entropy, ignore pixels (label 255) excluded
 * from all three. `probs` are softmax outputs [B,H,W,K]; `labels` int32 [B,H,W]; `band` [B,H,W].
 */
export function segmentationLoss(
  probs: tf.Tensor4D,
  labels: tf.Tensor3D,
  band: tf.Tensor3D,
  weights: LossWeights,
): tf.Scalar {
  return tf.tidy(() => {
    const k = probs.shape[3];
    const valid = tf.cast(tf.notEqual(labels, tf.scalar(IGNORE_INDEX, 'int32')), 'float32');
    const safeLabels = tf.mul(labels, tf.cast(valid, 'int32'));
    const onehot = tf.mul(tf.oneHot(safeLabels, k), tf.expandDims(valid, -1));
    const logp = tf.log(tf.clipByValue(probs, 1e-7, 1));
    const ce = tf.neg(tf.sum(tf.mul(onehot, logp), -1));
    const nValid = tf.maximum(tf.sum(valid), 1);
    const ceMean = tf.div(tf.sum(tf.mul(ce, valid)), nValid);
    const bandValid = tf.mul(band, valid);
    const bandMean = tf.div(tf.sum(tf.mul(ce, bandValid)), tf.maximum(tf.sum(bandValid), 1));
    const pv = tf.mul(probs, tf.expandDims(valid, -1));
    const inter = tf.sum(tf.mul(pv, onehot), [0, 1, 2]);
    const denom = tf.add(tf.sum(pv, [0, 1, 2]), tf.sum(onehot, [0, 1, 2]));
    const diceLoss = tf.sub(1, tf.mean(tf.div(tf.add(tf.mul(inter, 2), 1), tf.add(denom, 1))));
    return tf.addN([ceMean, tf.mul(diceLoss, weights.dice), tf.mul(bandMean, weights.boundary)]) as tf.Scalar;
  });
}
