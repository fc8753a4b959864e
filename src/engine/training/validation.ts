// The model's predictions measured against masks: on validation images while it trains, and on its own
// training images once it is done (the training check).
import type * as tfl from '@tensorflow/tfjs-layers';
import { compareMasks, meanMetrics, type MetricSummary } from '../../masks/segmentationMetrics';
import type { MaskImage, RgbImage } from '../../masks/maskImage';
import { predictImage, type TileOptions } from '../inference/tiledPredict';

export interface TrainSample {
  id: string;
  image: RgbImage;
  mask: MaskImage;
}

/** Training images the post-training check predicts at most (evenly spread over the list). */
export const TRAINING_CHECK_IMAGES = 8;

/** Metrics of the model's predictions on each validation sample. */
export async function validatePerImage(
  model: tfl.LayersModel,
  samples: TrainSample[],
  tiles: TileOptions,
): Promise<MetricSummary[]> {
  const per: MetricSummary[] = [];
  for (const s of samples) {
    const pred = await predictImage(model, s.image, tiles);
    per.push(meanMetrics([compareMasks(s.mask, { width: pred.width, height: pred.height, data: pred.classMap })]));
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

/**
 * The model's suggestions on up to TRAINING_CHECK_IMAGES of its own training images, evenly spread over the
 * list, beside their masks (for trainingCheck). `check` runs before each prediction and may throw (a cancel).
 */
export async function suggestionsOnTraining(
  model: tfl.LayersModel,
  train: TrainSample[],
  tiles: TileOptions,
  check: () => void,
): Promise<{ truth: MaskImage; suggestion: MaskImage }[]> {
  const checked: { truth: MaskImage; suggestion: MaskImage }[] = [];
  const every = Math.max(1, Math.ceil(train.length / TRAINING_CHECK_IMAGES));
  for (let i = 0; i < train.length; i += every) {
    check();
    const pred = await predictImage(model, train[i].image, tiles);
    checked.push({ truth: train[i].mask, suggestion: { width: pred.width, height: pred.height, data: pred.classMap } });
  }
  return checked;
}
