// What a fine-tune's crops are: their size, how many an epoch holds, and the class-prior correction that
// undoes the crops' bias towards class edges. Pure, apart from the head-bias helpers that apply the correction.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { PRETRAINED_CROP, SCRATCH_CROP, type FineTuneSettings } from '../../protocol/settings';

/**
 * The training crop size, a multiple of 16. 0 = automatic. A pretrained encoder's deep features look far
 * beyond a 128-pixel crop (stride 16, a receptive field of over 200 pixels), so on such a crop they are not
 * the features the whole image gives at inference, and a decoder trained on them misreads the whole image
 * (docs/benchmarks.md: 256-pixel crops needed fewer corrections on all three composite sets). The
 * scratch network keeps 128 pixels. Automatic crops are no larger than the largest training image (a larger
 * crop would only pad it).
 */
export function resolveCropSize(setting: number, pretrained: boolean, largestSide = Infinity): number {
  const size = setting > 0 ? setting : Math.min(pretrained ? PRETRAINED_CROP : SCRATCH_CROP, largestSide);
  return Math.ceil(size / 16) * 16;
}

export function stepsPerEpoch(settings: FineTuneSettings, trainImages: number, cropSize = SCRATCH_CROP): number {
  if (settings.stepsPerEpoch > 0) return settings.stepsPerEpoch;
  const steps = Math.min(32, Math.max(16, Math.ceil((trainImages * 2) / settings.batchSize)));
  // Crops larger than 128 pixels: an epoch holds at most twice the pixels of 128-pixel crops' epoch (256-pixel
  // crops: half the steps), so the default round stays within its time (docs/benchmarks.md).
  return Math.ceil(steps * Math.min(1, 2 * (SCRATCH_CROP / cropSize) ** 2));
}

/** Adds each label's pixels (labels below counts.length; the rest is ignore) to `counts`. */
export function classCounts(labels: ArrayLike<number>, counts: Float64Array): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v < counts.length) counts[v]++;
  }
}

/**
 * The class-prior correction of the head's logits: strength * log(image prior / crop prior) per class, from
 * pixel counts (add-one smoothed, so a class missing from either count gets a finite correction).
 */
export function priorCorrection(
  imageCounts: ArrayLike<number>,
  cropCounts: ArrayLike<number>,
  strength: number,
): number[] {
  const n = imageCounts.length;
  const total = (counts: ArrayLike<number>): number => Array.from(counts).reduce((a, b) => a + b, 0) + n;
  const imageTotal = total(imageCounts);
  const cropTotal = total(cropCounts);
  return Array.from(
    { length: n },
    (_, c) => strength * Math.log((imageCounts[c] + 1) / imageTotal / ((cropCounts[c] + 1) / cropTotal)),
  );
}

/** The bias of the network's 'head' layer. */
export function headBias(model: tfl.LayersModel): tfl.LayerVariable {
  const bias = model.getLayer('head').weights.find((w) => w.name.includes('bias'));
  if (!bias) throw new Error("the network's head has no bias");
  return bias;
}

/** Adds `delta` (per class) to the bias of the network's 'head' layer. */
export function addToHeadBias(model: tfl.LayersModel, delta: number[]): void {
  if (delta.every((d) => d === 0)) return;
  const bias = headBias(model);
  const next = tf.tidy(() => tf.add(bias.read(), tf.tensor1d(delta)));
  bias.write(next);
  next.dispose();
}
