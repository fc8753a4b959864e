// The pixel head's place in a fine-tune: after the network has trained, the head is fitted on the training
// images' labelled pixels (pixelHeadFit.ts) and kept only where validation allows.
import type * as tfl from '@tensorflow/tfjs-layers';
import { meanMetrics, type MetricSummary } from '../../masks/segmentationMetrics';
import { SeededRandom } from '../../masks/seededRandom';
import type { PixelHeadWeights } from '../../protocol/modelTypes';
import { PIXEL_HEAD_MAX_PIXELS, predictImage, type TileOptions } from '../inference/tiledPredict';
import { keptFeatures, pixelFeaturesFast, type FeaturesOf } from '../inference/pixelFeaturesOnnx';
import { DEFAULT_PIXEL_HEAD_FIT, fitPixelHead, labelledPixels, samplePixels, type PixelSamples } from './pixelHeadFit';
import { checkedIndices, validateFrom, type TrainSample } from './validation';

export interface PixelHeadStage {
  /** The head kept, or null. */
  head: PixelHeadWeights | null;
  /** What became of it: fitted on how many pixels, its loss and time, kept or not and why. */
  report: string;
  /** The validation with the head, when it was kept against validation images. */
  perImage?: MetricSummary[];
  /**
   * The network's probabilities (refined, without a head) of the training images the training check predicts
   * (checkedIndices), by training index, as the fit computed them: the check takes them instead of predicting
   * those images again. Kept up to NETWORK_PROBS_KEPT_BYTES.
   */
  network: Map<number, Float32Array>;
  /** The pixel features of the same images, by training index, as the fit computed them (keptFeatures). */
  features: Map<number, FeaturesOf>;
}

/**
 * Bytes of network probabilities the stage keeps for the training check (street frames: 7.6 MB each, and 19 MB
 * of pixel features beside them).
 */
export const NETWORK_PROBS_KEPT_BYTES = 256 * 1024 * 1024;

/**
 * Fits the pixel head on the training images' labelled pixels, the network's probabilities as it will be
 * stored (corrected) beside their features. With validation images, the head is kept only if their mean
 * boundary IoU (the fine-tune's own criterion) is no lower with it than without (`without`); then `perImage`
 * holds the validation with it. Images too large for the head to run on at prediction (PIXEL_HEAD_MAX_PIXELS)
 * are not sampled. `validationNetwork` may hold (by validation index) the network's probabilities of a validation
 * image under `tiles`, kept by the validation of the network alone: the head then runs on them instead of
 * predicting the image again (the same suggestion).
 */
export async function fitHeadStage(
  model: tfl.LayersModel,
  train: TrainSample[],
  validation: TrainSample[],
  tiles: TileOptions,
  classes: number,
  seed: number,
  without: MetricSummary | null,
  check: () => void,
  validationNetwork: readonly (Float32Array | null)[] = [],
): Promise<PixelHeadStage> {
  const options = { ...DEFAULT_PIXEL_HEAD_FIT, seed };
  const usable = train
    .map((s, index) => ({ s, index }))
    .filter(({ s }) => s.image.width * s.image.height <= PIXEL_HEAD_MAX_PIXELS);
  const counts = usable.map(({ s }) => labelledPixels(s.mask, classes));
  const total = counts.reduce((a, b) => a + b, 0);
  const network = new Map<number, Float32Array>();
  const features = new Map<number, FeaturesOf>();
  if (total === 0)
    return { head: null, report: 'not fitted: no labelled pixels in images small enough for it', network, features };
  const checked = new Set(checkedIndices(train.length));
  let kept = 0;
  const samples: PixelSamples = { xs: [], ys: [] };
  const rng = new SeededRandom(seed + 104729);
  for (const [i, { s, index }] of usable.entries()) {
    check();
    const want = Math.round((options.samples * counts[i]) / total);
    if (want === 0) continue;
    const pred = await predictImage(model, s.image, tiles, { keepProbabilities: true });
    if (!pred.probabilities) throw new Error('the prediction did not keep its probabilities');
    let featuresOf: FeaturesOf = pixelFeaturesFast;
    if (checked.has(index) && kept + pred.probabilities.byteLength <= NETWORK_PROBS_KEPT_BYTES) {
      network.set(index, pred.probabilities);
      kept += pred.probabilities.byteLength;
      featuresOf = keptFeatures();
      features.set(index, featuresOf);
    }
    await samplePixels(
      { image: s.image, mask: s.mask, probs: pred.probabilities },
      classes,
      want,
      rng,
      samples,
      featuresOf,
    );
  }
  const fit = await fitPixelHead(samples, classes, options, check);
  if (!fit) return { head: null, report: 'not fitted: no labelled pixels', network, features };
  const fitted = `fitted on ${fit.samples} pixels in ${fit.seconds.toFixed(1)} s on ${fit.runtime} (loss ${fit.firstLoss.toFixed(3)} -> ${fit.loss.toFixed(3)})`;
  if (validation.length === 0 || without === null)
    return { head: fit.head, report: `${fitted}; kept (no validation images yet)`, network, features };
  const perImage = await validateFrom(model, validation, { ...tiles, pixelHead: fit.head }, validationNetwork);
  const withHead = meanMetrics(perImage);
  const figures = `validation Boundary IoU ${withHead.boundaryIoU.toFixed(3)} with it, ${without.boundaryIoU.toFixed(3)} without`;
  return withHead.boundaryIoU >= without.boundaryIoU
    ? { head: fit.head, report: `${fitted}; kept: ${figures}`, perImage, network, features }
    : { head: null, report: `${fitted}; not kept: ${figures}`, network, features };
}
