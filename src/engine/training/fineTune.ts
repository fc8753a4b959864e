import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { meanMetrics, type MetricSummary } from '../../masks/segmentationMetrics';
import { SeededRandom } from '../../masks/seededRandom';
import { randomCrop, randomCropLabels, resolveHueJitter } from './augment';
import { hasContextHead } from '../network/contextHead';
import { contextFitFor, fitContextHead, type ContextFitResult } from './contextHeadFit';
import { encoderStages, setEncoderTrainableStages } from '../network/pretrainedUNet';
import { trainingCheck, type TrainingFit } from './trainingCheck';
import type { TileOptions } from '../inference/tiledPredict';
import type { PixelHeadWeights } from '../../protocol/modelTypes';
import { CancelledError } from '../../protocol/errors';
import type { FineTuneProgress, FineTuneTiming } from '../../protocol/modelTypes';
import { DEFAULT_FINE_TUNE, PRETRAINED_CROP, SCRATCH_CROP, type FineTuneSettings } from '../../protocol/settings';
import { addToHeadBias, classCounts, headBias, priorCorrection, resolveCropSize, stepsPerEpoch } from './cropPolicy';
import { suggestionsOnTraining, validateKeeping, validatePerImage, type TrainSample } from './validation';
import { fitHeadStage, NETWORK_PROBS_KEPT_BYTES } from './pixelHeadStage';
import { trainStep } from './trainStep';
import { startGradientPeer, type GradientPeer } from './gradientPeer';
import { OnnxTrainer, buildTrainingGraph, onnxTrainingPlan, stepOptimizer } from './onnxTraining';
import { inferenceChoice, loadOrt, ortLoadError, sessionOptions, threads } from '../inference/onnxInference';
import { EncoderCache } from '../inference/splitForward';

export { DEFAULT_FINE_TUNE, PRETRAINED_CROP, SCRATCH_CROP, type FineTuneSettings };

export interface FineTuneResult {
  /** Each epoch's mean loss and validation; the epochs' validations predict once, without the mirror image. */
  history: { epoch: number; loss: number; val?: MetricSummary }[];
  /** Validation before and after (the kept epoch, with the pixel head if kept), as pre-labels make suggestions. */
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
  /** How many threads computed the gradients, and why (or why the second could not start). */
  threads: { count: number; reason: string };
  /** Where the round's time went, in seconds. */
  timing: FineTuneTiming;
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
  hooks: FineTuneHooks = {},
): Promise<FineTuneResult> {
  // The validation images are predicted before training, after every second epoch and at the end, each time
  // with new decoder weights on the same frozen encoder: its feature maps are computed once and kept.
  const encoderCache = new EncoderCache(ENCODER_CACHE_BYTES);
  try {
    return await fineTuneWith(model, train, validation, settings, tiles, hooks, encoderCache);
  } finally {
    await encoderCache.release();
  }
}

type FineTuneHooks = {
  onProgress?: (p: FineTuneProgress) => void;
  signal?: AbortSignal;
  previousCorrection?: number[];
};

/**
 * Epochs between validations (and the last epoch is always validated). Validation only ranks the epochs to
 * keep the best; every second epoch needed as few corrections as every epoch on the real sets' first halves
 * (docs/benchmarks.md), for half the validations.
 */
export const VALIDATE_EVERY = 2;

/**
 * Bytes of the validation images' encoder feature maps a fine-tune keeps, of the direct view only (a 480x360
 * street frame's: 28 MB; a 512x512 image's: 41 MB). Beyond it, images are encoded at each validation.
 */
export const ENCODER_CACHE_BYTES = 192 * 1024 * 1024;

async function fineTuneWith(
  model: tfl.LayersModel,
  train: TrainSample[],
  validation: TrainSample[],
  settings: FineTuneSettings,
  tiles: TileOptions,
  hooks: FineTuneHooks,
  encoderCache: EncoderCache,
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
    classCounts(randomCropLabels(s.image, s.mask, priorRng, cropOptions), cropCounts);
  }
  // The context head alone is fitted on whole images, not crops: no crop prior to correct for.
  const correction = contextOnly
    ? new Array<number>(numClasses).fill(0)
    : priorCorrection(imageCounts, cropCounts, settings.priorCorrection);
  // The network alone is validated while it trains; the previous pixel head was fitted to the previous network.
  const networkTiles: TileOptions = { ...tiles, pixelHead: undefined };
  // Each epoch's validation, which only ranks the epochs, predicts once instead of averaging with the mirror
  // image (one forward pass instead of two). The kept epoch is then validated with the full pre-label, which is
  // what the acceptance check and the pixel head compare.
  const epochTiles: TileOptions = { ...networkTiles, mirror: false };
  // Validation sees the model as a person would: corrected.
  const correctedValidate = async (): Promise<MetricSummary[]> => {
    if (validation.length === 0) return [];
    const bias = headBias(model);
    const saved = tf.clone(bias.read());
    addToHeadBias(model, correction);
    try {
      return await validatePerImage(model, validation, epochTiles, encoderCache);
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
  const perImageBefore = await validatePerImage(model, validation, tiles, encoderCache);
  const metricsBefore = validation.length === 0 ? null : meanMetrics(perImageBefore);
  // Train without the previous fine-tune's correction; a new one is computed from this round's crops.
  if (hooks.previousCorrection)
    addToHeadBias(
      model,
      hooks.previousCorrection.map((d) => -d),
    );
  const stepLoss = { dice: settings.diceWeight, boundary: settings.boundaryWeight, weightDecay: settings.weightDecay };
  // The steps run through onnxruntime where it covers the network (one graph on every core); else on TF.js,
  // whose gradient thread starts while the context head is fitted (it needs only the topology now).
  const onnxPlan = contextOnly
    ? null
    : onnxTrainingPlan(model, trainable, settings, crop, stepLoss, {
        backend: tf.getBackend(),
        inference: inferenceChoice(),
        ort: loadOrt(),
        ortError: ortLoadError(),
      });
  const peerStart = contextOnly
    ? Promise.resolve({ peer: null, count: 1, reason: 'no decoder training (0 epochs)' })
    : onnxPlan?.ok
      ? Promise.resolve({ peer: null, count: threads(), reason: `onnxruntime, ${threads()} threads` })
      : startGradientPeer(model, settings.gradientThreads);
  // The context head is fitted first, on whole images; the decoder then trains on top of it.
  const timing: FineTuneTiming = { contextHead: 0, training: 0, crops: 0, validation: 0, pixelHead: 0, check: 0 };
  let mark = Date.now();
  const lap = (): number => {
    const now = Date.now();
    const s = (now - mark) / 1000;
    mark = now;
    return s;
  };
  let context: ContextFitResult | null;
  try {
    context = hasContextHead(model)
      ? await fitContextHead(model, train, contextFitFor(settings.epochs, settings.seed), check)
      : null;
  } catch (err) {
    await (await peerStart).peer?.close();
    throw err;
  }
  timing.contextHead = lap();
  const started = await peerStart;
  // The training graph holds the frozen weights as constants: built now that the context head is fitted.
  let onnx: OnnxTrainer | null = null;
  if (onnxPlan?.ok) {
    const graph = buildTrainingGraph(model, trainable, settings.batchSize, crop, stepLoss);
    const o = loadOrt();
    if ('unsupported' in graph || !o) {
      started.count = 1;
      started.reason = `TF.js, one thread: the training graph could not be built`;
    } else {
      try {
        onnx = await OnnxTrainer.create(o, graph, sessionOptions(true), stepOptimizer(settings));
        started.reason = `onnxruntime, ${threads()} threads, one graph per step`;
      } catch (err) {
        started.count = 1;
        started.reason = `TF.js, one thread: onnxruntime could not load the training graph (${(err as Error).message.split('\n')[0]})`;
      }
    }
  }
  const peer: GradientPeer | null = started.peer;
  let peerSynced = false;
  const history: FineTuneResult['history'] = [];
  let best = metricsBefore?.boundaryIoU ?? -Infinity;
  let bestEpoch = 0;
  // Snapshots are kept per variable: getWeights() lists trainable weights first, so its order changes when
  // a full fine-tune unfreezes a stage, and setWeights() would then put weights into the wrong layers.
  let bestWeights: tf.Tensor[] | null = null;
  const variables = model.weights;
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
        const cropsStart = performance.now();
        const crops = [];
        for (let b = 0; b < settings.batchSize; b++) {
          const s = train[rng.int(0, train.length)];
          crops.push(randomCrop(s.image, s.mask, rng, cropOptions));
        }
        timing.crops = (timing.crops ?? 0) + (performance.now() - cropsStart) / 1000;
        const loss = await trainStep(
          { model, optimizer, trainable, kernels, size: crop, weights: stepLoss, onnx },
          crops,
          peer,
          !peerSynced,
        );
        peerSynced = true;
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
      onnx?.sync();
      timing.training += lap();
      // Validation only ranks the epochs: it runs after every VALIDATE_EVERY-th epoch and after the last.
      const validates = epoch % VALIDATE_EVERY === 0 || epoch === settings.epochs;
      const perImage = validates ? await correctedValidate() : [];
      timing.validation += lap();
      const val = perImage.length === 0 ? null : meanMetrics(perImage);
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
          tf.dispose(bestWeights ?? []);
          bestWeights = variables.map((v) => tf.clone(v.read()));
        } else if (epoch - bestEpoch >= settings.patience) {
          stoppedEarly = epoch < settings.epochs;
          break;
        }
      } else if (validation.length === 0) {
        bestEpoch = epoch;
      }
    }
    // Restore the best epoch's weights (validated), unless the last epoch was the best.
    if (bestWeights && bestEpoch !== history[history.length - 1]?.epoch) {
      const best = bestWeights;
      variables.forEach((v, i) => v.write(best[i]));
    }
    addToHeadBias(model, correction);
    // The kept weights, validated as a person will see their suggestions (mirror-averaged, refined), keeping the
    // probabilities: the pixel head's validation runs the head on them instead of predicting again.
    const kept =
      validation.length === 0
        ? null
        : await validateKeeping(model, validation, networkTiles, NETWORK_PROBS_KEPT_BYTES, encoderCache);
    // Nothing predicts the validation images again: their feature maps go before the pixel head's stage.
    await encoderCache.release();
    const metricsAfter = kept ? meanMetrics(kept.perImage) : null;
    let afterSummary = metricsAfter;
    let afterPerImage: MetricSummary[] = kept?.perImage ?? [];
    await peer?.close();
    timing.validation += lap();
    const head = settings.pixelHead
      ? await fitHeadStage(
          model,
          train,
          validation,
          networkTiles,
          numClasses,
          settings.seed,
          afterSummary,
          check,
          kept?.probabilities,
        )
      : {
          head: null,
          report: 'not fitted (turned off)',
          network: new Map<number, Float32Array>(),
          features: new Map(),
        };
    timing.pixelHead = lap();
    if (head.head && head.perImage) {
      afterPerImage = head.perImage;
      afterSummary = meanMetrics(head.perImage);
    }
    const storedTiles: TileOptions = { ...networkTiles, ...(head.head ? { pixelHead: head.head } : {}) };
    // The version as it will be stored, on (up to 8 of) its own training images.
    const checked = await suggestionsOnTraining(model, train, storedTiles, check, head.network, head.features);
    // The kept probabilities and features (up to 8 images': 27 MB each at 512x512) are not needed any more.
    head.network.clear();
    head.features.clear();
    timing.check = lap();
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
      threads: { count: started.count, reason: started.reason },
      timing,
    };
  } finally {
    await peer?.close();
    await onnx?.release();
    for (const [name, trainable] of storedTrainable) model.getLayer(name).trainable = trainable;
    tf.dispose(bestWeights ?? []);
    optimizer.dispose();
  }
}
