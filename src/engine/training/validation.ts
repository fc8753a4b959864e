// The model's predictions measured against masks: on validation images while it trains, and on its own
// training images once it is done (the training check).
import type * as tfl from '@tensorflow/tfjs-layers';
import { compareMasks, meanMetrics, type MetricSummary } from '../../masks/segmentationMetrics';
import type { MaskImage, RgbImage } from '../../masks/maskImage';
import { predictImage, runsPixelHead, type TileOptions } from '../inference/tiledPredict';
import { runPixelHead } from '../inference/pixelHeadOnnx';
import type { EncoderCache } from '../inference/splitForward';
import type { FeaturesOf } from '../inference/pixelFeaturesOnnx';

export interface TrainSample {
  id: string;
  image: RgbImage;
  mask: MaskImage;
}

/** Training images the post-training check predicts at most (evenly spread over the list). */
export const TRAINING_CHECK_IMAGES = 8;

/**
 * Metrics of the model's predictions on each validation sample. `encoderCache` keeps the samples' encoder
 * feature maps across validations of new decoder weights (`PredictHooks.encoderCache`).
 */
export async function validatePerImage(
  model: tfl.LayersModel,
  samples: TrainSample[],
  tiles: TileOptions,
  encoderCache?: EncoderCache,
): Promise<MetricSummary[]> {
  return (await validateKeeping(model, samples, tiles, 0, encoderCache)).perImage;
}

/**
 * Metrics of the model's predictions on each validation sample, keeping each prediction's probabilities (as
 * `PredictHooks.keepProbabilities` gives them) while they fit in `maxBytes`; null for the others.
 */
export async function validateKeeping(
  model: tfl.LayersModel,
  samples: TrainSample[],
  tiles: TileOptions,
  maxBytes: number,
  encoderCache?: EncoderCache,
): Promise<{ perImage: MetricSummary[]; probabilities: (Float32Array | null)[] }> {
  const perImage: MetricSummary[] = [];
  const probabilities: (Float32Array | null)[] = [];
  let kept = 0;
  for (const s of samples) {
    const pred = await predictImage(model, s.image, tiles, { keepProbabilities: maxBytes > 0, encoderCache });
    const probs = pred.probabilities && kept + pred.probabilities.byteLength <= maxBytes ? pred.probabilities : null;
    kept += probs?.byteLength ?? 0;
    probabilities.push(probs);
    perImage.push(meanMetrics([compareMasks(s.mask, { width: pred.width, height: pred.height, data: pred.classMap })]));
  }
  return { perImage, probabilities };
}

/**
 * Metrics of the model's predictions under `tiles` on each sample, where `network` may hold (by sample index)
 * the network's probabilities of a sample under `tiles` without the pixel head, as `validateKeeping` kept them:
 * those samples get the pixel head on them instead of a new prediction (`suggestionOf`).
 */
export async function validateFrom(
  model: tfl.LayersModel,
  samples: TrainSample[],
  tiles: TileOptions,
  network: readonly (Float32Array | null)[],
): Promise<MetricSummary[]> {
  const per: MetricSummary[] = [];
  for (const [i, s] of samples.entries()) {
    const suggestion = await suggestionOf(model, s.image, tiles, network[i] ?? undefined, undefined);
    per.push(meanMetrics([compareMasks(s.mask, suggestion)]));
  }
  return per;
}

/** Mean metrics of the model's predictions on validation samples. */
export async function validate(
  model: tfl.LayersModel,
  samples: TrainSample[],
  tiles: TileOptions,
): Promise<MetricSummary | null> {
  return samples.length === 0 ? null : meanMetrics(await validatePerImage(model, samples, tiles));
}

/** Indices of the training images the training check predicts: up to TRAINING_CHECK_IMAGES, evenly spread. */
export function checkedIndices(count: number): number[] {
  const every = Math.max(1, Math.ceil(count / TRAINING_CHECK_IMAGES));
  const out: number[] = [];
  for (let i = 0; i < count; i += every) out.push(i);
  return out;
}

/**
 * The model's suggestions on up to TRAINING_CHECK_IMAGES of its own training images (checkedIndices) beside
 * their masks (for trainingCheck). `check` runs before each prediction and may throw (a cancel). `network`
 * may hold, by training index, the network's probabilities of an image under `tiles` without the pixel head
 * (after the edge refinement, as the pixel head's fit took them): the suggestion is then the pixel head (if
 * `tiles` has one) on those, which is what predicting the image again would give, without predicting it; and
 * `features` the pixel features of those images as the fit computed them (keptFeatures).
 */
export async function suggestionsOnTraining(
  model: tfl.LayersModel,
  train: TrainSample[],
  tiles: TileOptions,
  check: () => void,
  network: ReadonlyMap<number, Float32Array> = new Map(),
  features: ReadonlyMap<number, FeaturesOf> = new Map(),
): Promise<{ truth: MaskImage; suggestion: MaskImage }[]> {
  const checked: { truth: MaskImage; suggestion: MaskImage }[] = [];
  for (const i of checkedIndices(train.length)) {
    check();
    const { image, mask } = train[i];
    checked.push({ truth: mask, suggestion: await suggestionOf(model, image, tiles, network.get(i), features.get(i)) });
  }
  return checked;
}

/**
 * The model's suggestion for an image under `tiles`. `probs`, when given, are the network's probabilities of
 * the image under `tiles` without the pixel head (after the edge refinement): the suggestion is then the pixel
 * head (if `tiles` has one that runs on this image) on them, which is what predicting the image again gives.
 */
async function suggestionOf(
  model: tfl.LayersModel,
  image: RgbImage,
  tiles: TileOptions,
  probs: Float32Array | undefined,
  featuresOf: FeaturesOf | undefined,
): Promise<MaskImage> {
  if (probs && (!tiles.pixelHead || runsPixelHead(tiles, image.width, image.height))) {
    const final = tiles.pixelHead ? await runPixelHead(tiles.pixelHead, image, probs, featuresOf) : probs;
    return { width: image.width, height: image.height, data: argmaxClasses(final, image.width * image.height) };
  }
  const pred = await predictImage(model, image, tiles);
  return { width: pred.width, height: pred.height, data: pred.classMap };
}

/** The class of highest probability per pixel (the first on a tie, as a prediction takes it). */
function argmaxClasses(probs: Float32Array, pixels: number): Uint8Array {
  const k = probs.length / pixels;
  const out = new Uint8Array(pixels);
  for (let i = 0; i < pixels; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (probs[i * k + c] > probs[i * k + best]) best = c;
    out[i] = best;
  }
  return out;
}
