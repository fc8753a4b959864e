// The model's last predictions, kept in the model process: a followed suggestion tries the fusion and the
// sequence head on the neighbour with the model's prediction there, and when a person walks down a sequence
// that neighbour is the frame suggested just before, with the same model.
import { createHash } from 'node:crypto';
import type { RgbImage } from '../masks/maskImage';
import type { Prediction, TileOptions } from '../engine/inference/tiledPredict';

/** Predictions kept per model: the frame suggested, its neighbour, and the one before. */
export const PREDICTIONS_KEPT = 3;
/** Larger predictions are not kept: a 1920x1080 frame's probabilities of 12 classes (95 MiB) still are. */
export const KEPT_PROBABILITIES_MAX = 1920 * 1080 * 12;

/**
 * Predictions by model object (a new version is another object; a model let go takes its predictions with
 * it), then by the image's pixels (a hash: an edited file is another image, whatever its name or time) and the
 * options (the pixel head's weights come with the model, so only whether there is one counts).
 */
export class KeptPredictions<Model extends object> {
  private readonly byModel = new WeakMap<Model, Map<string, Prediction>>();

  constructor(
    private readonly perModel = PREDICTIONS_KEPT,
    private readonly maxProbabilities = KEPT_PROBABILITIES_MAX,
  ) {}

  /** The kept prediction of this image with these options, else `predict`'s, kept. */
  async get(
    model: Model,
    image: RgbImage,
    options: TileOptions,
    keepProbabilities: boolean,
    predict: () => Promise<Prediction>,
  ): Promise<Prediction> {
    const pixels = createHash('sha1').update(image.data).digest('hex');
    const key = JSON.stringify([
      pixels,
      image.width,
      image.height,
      { ...options, pixelHead: options.pixelHead !== undefined },
      keepProbabilities,
    ]);
    let kept = this.byModel.get(model);
    const hit = kept?.get(key);
    if (kept && hit) {
      // The most recently read is kept longest: the frame just suggested is the next request's neighbour.
      kept.delete(key);
      kept.set(key, hit);
      return hit;
    }
    const pred = await predict();
    if ((pred.probabilities?.length ?? 0) > this.maxProbabilities) return pred;
    if (!kept) this.byModel.set(model, (kept = new Map()));
    kept.set(key, pred);
    for (const old of kept.keys()) {
      if (kept.size <= this.perModel) break;
      kept.delete(old);
    }
    return pred;
  }
}
