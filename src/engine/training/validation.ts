// The model's predictions measured against masks: on validation images while it trains, and on its own
// training images once it is done (the training check).
import type * as tfl from '@tensorflow/tfjs-layers';
import { compareMasks, meanMetrics, type MetricSummary } from '../../masks/segmentationMetrics';
import type { MaskImage, RgbImage } from '../../masks/maskImage';
import { predictImage, runsPixelHead, type TileOptions } from '../inference/tiledPredict';
import { runPixelHead } from '../inference/pixelHeadOnnx';

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
 * `tiles` has one) on those, which is what predicting the image again would give, without predicting it.
 */
export async function suggestionsOnTraining(
  model: tfl.LayersModel,
  train: TrainSample[],
  tiles: TileOptions,
  check: () => void,
  network: ReadonlyMap<number, Float32Array> = new Map(),
): Promise<{ truth: MaskImage; suggestion: MaskImage }[]> {
  const checked: { truth: MaskImage; suggestion: MaskImage }[] = [];
  for (const i of checkedIndices(train.length)) {
    check();
    const { image, mask } = train[i];
    const probs = network.get(i);
    if (probs && (!tiles.pixelHead || runsPixelHead(tiles, image.width, image.height))) {
      const final = tiles.pixelHead ? await runPixelHead(tiles.pixelHead, image, probs) : probs;
      checked.push({
        truth: mask,
        suggestion: {
          width: image.width,
          height: image.height,
          data: argmaxClasses(final, image.width * image.height),
        },
      });
      continue;
    }
    const pred = await predictImage(model, image, tiles);
    checked.push({ truth: mask, suggestion: { width: pred.width, height: pred.height, data: pred.classMap } });
  }
  return checked;
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
