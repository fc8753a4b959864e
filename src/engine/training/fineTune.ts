import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { compareMasks, meanMetrics, type MetricSummary } from '../../masks/segmentationMetrics';
import type { MaskImage, RgbImage } from '../../masks/maskImage';
import { SeededRandom } from '../../masks/seededRandom';
import { randomCrop, resolveHueJitter } from './augment';
import { contextFitFor, fitContextHead, hasContextHead, type ContextFitResult } from '../network/contextHead';
import { encoderStages, setEncoderTrainableStages } from '../network/pretrainedUNet';
import { segmentationLoss } from './losses';
import { trainingCheck, type TrainingFit } from './trainingCheck';
import { PIXEL_HEAD_MAX_PIXELS, predictImage, type TileOptions } from '../inference/tiledPredict';
import { DEFAULT_PIXEL_HEAD_FIT, fitPixelHead, labelledPixels, samplePixels, type PixelSamples } from './pixelHeadFit';
import type { PixelHeadWeights } from '../../protocol/modelTypes';
import { CancelledError } from '../../protocol/errors';
import type { FineTuneProgress } from '../../protocol/modelTypes';
import { DEFAULT_FINE_TUNE, PRETRAINED_CROP, SCRATCH_CROP, type FineTuneSettings } from '../../protocol/settings';

export { DEFAULT_FINE_TUNE, PRETRAINED_CROP, SCRATCH_CROP, type FineTuneSettings };

export interface TrainSample {
  id: string;
  image: RgbImage;
  mask: MaskImage;
}

export interface FineTuneResult {
  history: { epoch: number; loss: number; val?: MetricSummary }[];
  metricsBefore: MetricSummary | null;
  metricsAfter: MetricSummary | null;
  /** Per validation image, in the validation list's order: before, and at the kept epoch (for the acceptance check). */
  perImageBefore: MetricSummary[];
  perImageAfter: MetricSummary[];
  bestEpoch: number;
  steps: number;
  seconds: number;
  stoppedEarly: boolean;
  /** What was added to the head's bias per class (the class-prior correction); the next fine-tune takes it off first. */
  priorCorrection: number[];
  /** The hue jitter used, and why (the automatic choice says what it found). */
  hueJitter: { value: number; reason: string };
  /** The training crop size used. */
  cropSize: number;
  /** The context head's fit (cells, loss, seconds), or null for a network without one. */
  context: ContextFitResult | null;
  /** The new version on its own training images: whether it learned anything (trainingCheck.ts). */
  trainingFit: TrainingFit;
  /** The pixel head fitted and kept (null: none, and why in `pixelHeadReport`). */
  pixelHead: PixelHeadWeights | null;
  /** What became of the pixel head: fitted on how many pixels, its loss and time, kept or not and why. */
  pixelHeadReport: string;
}

/** Training images the post-training check predicts at most (evenly spread over the list). */
export const TRAINING_CHECK_IMAGES = 8;

/**
 * The training crop size, a multiple of 16. 0 = automatic. A pretrained encoder's deep features look far
 * beyond a 128-pixel crop (stride 16, a receptive field of over 200 pixels), so on such a crop they are not
 * the features the whole image gives at inference, and a decoder trained on them misreads the whole image
 * (README, "Measured here": 256-pixel crops needed fewer corrections on all three composite sets). The
 * scratch network keeps 128 pixels. Automatic crops are no larger than the largest training image (a larger
 * crop would only pad it).
 */
export function resolveCropSize(setting: number, pretrained: boolean, largestSide = Infinity): number {
  const size = setting > 0 ? setting : Math.min(pretrained ? PRETRAINED_CROP : SCRATCH_CROP, largestSide);
  return Math.ceil(size / 16) * 16;
}

export { CancelledError };
export type { FineTuneProgress };

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

function headBias(model: tfl.LayersModel): tfl.LayerVariable {
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

function classCounts(labels: ArrayLike<number>, counts: Float64Array): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v < counts.length) counts[v]++;
  }
}

export function stepsPerEpoch(settings: FineTuneSettings, trainImages: number, cropSize = SCRATCH_CROP): number {
  if (settings.stepsPerEpoch > 0) return settings.stepsPerEpoch;
  const steps = Math.min(32, Math.max(16, Math.ceil((trainImages * 2) / settings.batchSize)));
  // Crops larger than 128 pixels: an epoch holds at most twice the pixels of 128-pixel crops' epoch (256-pixel
  // crops: half the steps), so the default round stays within its time (README, "Measured here").
  return Math.ceil(steps * Math.min(1, 2 * (SCRATCH_CROP / cropSize) ** 2));
}

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
 * Fine-tunes a model in place on (image, corrected mask) pairs: seeded augmented crops, cross-entropy
 * + soft Dice + boundary term, L2 decay, Adam or SGD, early stopping on validation boundary IoU with
 * the best epoch's weights restored. Throws CancelledError when the signal aborts (the caller must then
 * discard the model object: its weights are part-trained).
 */
export async function fineTune(
  model: tfl.LayersModel,
  train: TrainSample[],
  validation: TrainSample[],
  settings: FineTuneSettings,
  tiles: TileOptions,
  hooks: { onProgress?: (p: FineTuneProgress) => void; signal?: AbortSignal; previousCorrection?: number[] } = {},
): Promise<FineTuneResult> {
  if (train.length === 0) throw new Error('no training images: save at least one corrected mask first');
  const contextOnly = settings.epochs === 0;
  if (contextOnly && !hasContextHead(model))
    throw new Error(
      '0 epochs fits only the context head, and this model has none (it was created without a pretrained encoder, or before the context head existed): set 1 epoch or more',
    );
  const numClasses = model.outputs[0].shape[3] as number;
  const imageCounts = new Float64Array(numClasses);
  for (const s of train) classCounts(s.mask.data, imageCounts);
  const crop = resolveCropSize(
    settings.cropSize,
    encoderStages(model).size > 0,
    Math.max(...train.map((s) => Math.max(s.image.width, s.image.height))),
  );
  const hueJitter = resolveHueJitter(settings.hueJitter, train, numClasses);
  const cropOptions = {
    size: crop,
    boundaryBias: settings.boundaryBias,
    boundaryRadius: settings.boundaryRadius,
    colorJitter: settings.colorJitter,
    hueJitter: hueJitter.value,
  };
  // The crops' class prior, estimated once from the labels of 256 crops drawn as training draws them (with
  // their own seed, so training's crops are unchanged): every validation and the stored model use the same correction.
  const cropCounts = new Float64Array(numClasses);
  const priorRng = new SeededRandom(settings.seed + 7919);
  for (let k = 0; k < 256; k++) {
    const s = train[priorRng.int(0, train.length)];
    classCounts(randomCrop(s.image, s.mask, priorRng, cropOptions).y, cropCounts);
  }
  // The context head alone is fitted on whole images, not crops: no crop prior to correct for.
  const correction = contextOnly
    ? new Array<number>(numClasses).fill(0)
    : priorCorrection(imageCounts, cropCounts, settings.priorCorrection);
  // The network alone is validated while it trains; the previous pixel head was fitted to the previous network.
  const networkTiles: TileOptions = { ...tiles, pixelHead: undefined };
  // Validation sees the model as a person would: corrected.
  const correctedValidate = async (): Promise<MetricSummary[]> => {
    if (validation.length === 0) return [];
    const bias = headBias(model);
    const saved = tf.clone(bias.read());
    addToHeadBias(model, correction);
    try {
      return await validatePerImage(model, validation, networkTiles);
    } finally {
      bias.write(saved);
      saved.dispose();
    }
  };
  const start = Date.now();
  const rng = new SeededRandom(settings.seed);
  const steps = stepsPerEpoch(settings, train.length, crop);
  const totalSteps = steps * settings.epochs;
  const optimizer =
    settings.optimizer === 'adam'
      ? tf.train.adam(settings.learningRate)
      : tf.train.momentum(settings.learningRate, 0.9);
  // The encoder's freezing as stored, restored at the end: the next fine-tune decides again.
  const storedTrainable = [...encoderStages(model).keys()].map(
    (name) => [name, model.getLayer(name).trainable] as const,
  );
  let trainable: tf.Variable[] = [];
  let kernels: tf.Tensor[] = [];
  const collect = (): void => {
    // tfjs optimisers key their moments by position in this list: variables unfrozen later go at its end.
    const now = model.trainableWeights.map((w) => w.read() as tf.Variable);
    trainable = [...trainable.filter((v) => now.includes(v)), ...now.filter((v) => !trainable.includes(v))];
    kernels = model.trainableWeights.filter((w) => w.name.includes('kernel')).map((w) => w.read());
  };
  collect();
  const check = (): void => {
    if (hooks.signal?.aborted) throw new CancelledError();
  };
  const perImageBefore = await validatePerImage(model, validation, tiles);
  const metricsBefore = validation.length === 0 ? null : meanMetrics(perImageBefore);
  // Train without the previous fine-tune's correction; a new one is computed from this round's crops.
  if (hooks.previousCorrection)
    addToHeadBias(
      model,
      hooks.previousCorrection.map((d) => -d),
    );
  // The context head is fitted first, on whole images; the decoder then trains on top of it.
  const context = hasContextHead(model)
    ? await fitContextHead(model, train, contextFitFor(settings.epochs, settings.seed), check)
    : null;
  const history: FineTuneResult['history'] = [];
  let best = metricsBefore?.boundaryIoU ?? -Infinity;
  let bestEpoch = 0;
  // Snapshots are kept per variable: getWeights() lists trainable weights first, so its order changes when
  // a full fine-tune unfreezes a stage, and setWeights() would then put weights into the wrong layers.
  let bestWeights: tf.Tensor[] | null = null;
  const variables = model.weights;
  let sinceBest = 0;
  let perImageAfter: MetricSummary[] = [];
  let lastPerImage: MetricSummary[] = [];
  let done = 0;
  let stoppedEarly = false;
  try {
    for (let epoch = 1; epoch <= settings.epochs; epoch++) {
      // Full fine-tune: unfreeze the encoder stage by stage, deepest first (a no-op without a pretrained encoder).
      if (
        settings.encoderStages > 0 &&
        setEncoderTrainableStages(
          model,
          Math.min(settings.encoderStages, Math.floor(((epoch - 1) * (settings.encoderStages + 1)) / settings.epochs)),
        )
      )
        collect();
      let lossSum = 0;
      for (let step = 1; step <= steps; step++) {
        // Yield so a cancel message can arrive: wasm reads resolve without giving the event loop a turn.
        await new Promise<void>((resolve) => setImmediate(resolve));
        check();
        const crops = [];
        for (let b = 0; b < settings.batchSize; b++) {
          const s = train[rng.int(0, train.length)];
          crops.push(randomCrop(s.image, s.mask, rng, cropOptions));
        }
        const n = crops.length;
        const xs = new Float32Array(n * crop * crop * 3);
        const ys = new Int32Array(n * crop * crop);
        const bands = new Float32Array(n * crop * crop);
        crops.forEach((c, i) => {
          xs.set(c.x, i * crop * crop * 3);
          ys.set(c.y, i * crop * crop);
          bands.set(c.band, i * crop * crop);
        });
        const x = tf.tensor4d(xs, [n, crop, crop, 3]);
        const y = tf.tensor3d(ys, [n, crop, crop], 'int32');
        const band = tf.tensor3d(bands, [n, crop, crop]);
        const lossT = optimizer.minimize(
          () => {
            const probs = model.apply(x, { training: true }) as tf.Tensor4D;
            let loss = segmentationLoss(probs, y, band, {
              dice: settings.diceWeight,
              boundary: settings.boundaryWeight,
            });
            if (settings.weightDecay > 0) {
              const l2 = tf.addN(kernels.map((k) => tf.sum(tf.square(k))));
              loss = tf.add(loss, tf.mul(l2, settings.weightDecay / 2));
            }
            return loss as tf.Scalar;
          },
          true,
          trainable,
        );
        tf.dispose([x, y, band]);
        const loss = lossT ? (await lossT.data())[0] : NaN;
        lossT?.dispose();
        if (!Number.isFinite(loss))
          throw new Error(`the loss became ${loss} at epoch ${epoch}, step ${step}; lower the learning rate`);
        lossSum += loss;
        done++;
        const elapsed = (Date.now() - start) / 1000;
        hooks.onProgress?.({
          phase: 'train',
          epoch,
          epochs: settings.epochs,
          step,
          steps,
          loss,
          etaSeconds: (elapsed / done) * (totalSteps - done),
        });
      }
      check();
      const perImage = await correctedValidate();
      const val = perImage.length === 0 ? null : meanMetrics(perImage);
      lastPerImage = perImage;
      const entry = { epoch, loss: lossSum / steps, val: val ?? undefined };
      history.push(entry);
      const elapsed = (Date.now() - start) / 1000;
      hooks.onProgress?.({
        phase: 'validate',
        epoch,
        epochs: settings.epochs,
        step: steps,
        steps,
        loss: entry.loss,
        val: val ?? undefined,
        etaSeconds: (elapsed / done) * (totalSteps - done),
      });
      if (val) {
        if (val.boundaryIoU > best) {
          best = val.boundaryIoU;
          bestEpoch = epoch;
          perImageAfter = perImage;
          sinceBest = 0;
          tf.dispose(bestWeights ?? []);
          bestWeights = variables.map((v) => tf.clone(v.read()));
        } else if (++sinceBest >= settings.patience) {
          stoppedEarly = epoch < settings.epochs;
          break;
        }
      } else {
        bestEpoch = epoch;
      }
    }
    // Restore the best epoch's weights (validated), unless the last epoch was the best.
    if (bestWeights && bestEpoch !== history[history.length - 1]?.epoch) {
      const best = bestWeights;
      variables.forEach((v, i) => v.write(best[i]));
    }
    if (contextOnly) lastPerImage = await correctedValidate();
    const metricsAfter =
      validation.length === 0
        ? null
        : contextOnly
          ? meanMetrics(lastPerImage)
          : bestWeights && bestEpoch > 0
            ? (history[bestEpoch - 1].val ?? null)
            : (history[history.length - 1]?.val ?? null);
    addToHeadBias(model, correction);
    let afterSummary = metricsAfter;
    let afterPerImage: MetricSummary[] =
      metricsAfter === null ? [] : bestWeights && bestEpoch > 0 ? perImageAfter : lastPerImage;
    const head = settings.pixelHead
      ? await fitHead(model, train, validation, networkTiles, numClasses, settings.seed, afterSummary, check)
      : { head: null, report: 'not fitted (turned off)' };
    if (head.head && head.perImage) {
      afterPerImage = head.perImage;
      afterSummary = meanMetrics(head.perImage);
    }
    const storedTiles: TileOptions = { ...networkTiles, ...(head.head ? { pixelHead: head.head } : {}) };
    // The version as it will be stored, on (up to 8 of) its own training images.
    const checked: { truth: MaskImage; suggestion: MaskImage }[] = [];
    const every = Math.max(1, Math.ceil(train.length / TRAINING_CHECK_IMAGES));
    for (let i = 0; i < train.length; i += every) {
      check();
      const pred = await predictImage(model, train[i].image, storedTiles);
      checked.push({
        truth: train[i].mask,
        suggestion: { width: pred.width, height: pred.height, data: pred.classMap },
      });
    }
    const trainingFit = trainingCheck(checked, {
      loss: history.length > 0 ? { first: history[0].loss, last: history[history.length - 1].loss } : undefined,
      contextOnly,
      pixelHead: head.head !== null,
    });
    return {
      history,
      metricsBefore,
      metricsAfter: afterSummary,
      perImageBefore,
      perImageAfter: afterPerImage,
      bestEpoch,
      steps: done,
      seconds: (Date.now() - start) / 1000,
      stoppedEarly,
      priorCorrection: correction,
      hueJitter,
      cropSize: crop,
      context,
      trainingFit,
      pixelHead: head.head,
      pixelHeadReport: head.report,
    };
  } finally {
    for (const [name, trainable] of storedTrainable) model.getLayer(name).trainable = trainable;
    tf.dispose(bestWeights ?? []);
    optimizer.dispose();
  }
}

/**
 * Fits the pixel head on the training images' labelled pixels, the network's probabilities as it will be
 * stored (corrected) beside their features. With validation images, the head is kept only if their mean
 * boundary IoU (the fine-tune's own criterion) is no lower with it than without; then `perImage` holds the
 * validation with it. Images too large for the head to run on at prediction (PIXEL_HEAD_MAX_PIXELS) are not sampled.
 */
async function fitHead(
  model: tfl.LayersModel,
  train: TrainSample[],
  validation: TrainSample[],
  tiles: TileOptions,
  classes: number,
  seed: number,
  without: MetricSummary | null,
  check: () => void,
): Promise<{ head: PixelHeadWeights | null; report: string; perImage?: MetricSummary[] }> {
  const options = { ...DEFAULT_PIXEL_HEAD_FIT, seed };
  const usable = train.filter((s) => s.image.width * s.image.height <= PIXEL_HEAD_MAX_PIXELS);
  const counts = usable.map((s) => labelledPixels(s.mask, classes));
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return { head: null, report: 'not fitted: no labelled pixels in images small enough for it' };
  const samples: PixelSamples = { xs: [], ys: [] };
  const rng = new SeededRandom(seed + 104729);
  for (const [i, s] of usable.entries()) {
    check();
    const want = Math.round((options.samples * counts[i]) / total);
    if (want === 0) continue;
    const pred = await predictImage(model, s.image, tiles, { keepProbabilities: true });
    if (!pred.probabilities) throw new Error('the prediction did not keep its probabilities');
    samplePixels({ image: s.image, mask: s.mask, probs: pred.probabilities }, classes, want, rng, samples);
  }
  const fit = fitPixelHead(samples, classes, options, check);
  if (!fit) return { head: null, report: 'not fitted: no labelled pixels' };
  const fitted = `fitted on ${fit.samples} pixels in ${fit.seconds.toFixed(1)} s (loss ${fit.firstLoss.toFixed(3)} -> ${fit.loss.toFixed(3)})`;
  if (validation.length === 0 || without === null)
    return { head: fit.head, report: `${fitted}; kept (no validation images yet)` };
  const perImage = await validatePerImage(model, validation, { ...tiles, pixelHead: fit.head });
  const withHead = meanMetrics(perImage);
  const figures = `validation Boundary IoU ${withHead.boundaryIoU.toFixed(3)} with it, ${without.boundaryIoU.toFixed(3)} without`;
  return withHead.boundaryIoU >= without.boundaryIoU
    ? { head: fit.head, report: `${fitted}; kept: ${figures}`, perImage }
    : { head: null, report: `${fitted}; not kept: ${figures}` };
}
