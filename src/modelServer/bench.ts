import * as tf from '@tensorflow/tfjs-core';
import type { BenchResult, BenchTrain, FineTuneRoundResult, RequestMap } from '../protocol/modelProtocol';
import { syntheticSample } from '../synthetic/syntheticShapes';
import { DEFAULT_FINE_TUNE, fineTune } from '../engine/training/fineTune';
import { releaseFolded } from '../engine/inference/foldedInference';
import {
  inferenceReport,
  loadOrt,
  releaseOnnx,
  sessionOptions,
  threads as onnxThreads,
} from '../engine/inference/onnxInference';
import { OnnxTrainer, buildTrainingGraph } from '../engine/training/onnxTraining';
import { SeededRandom } from '../masks/seededRandom';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Crop } from '../engine/training/augment';
import { startGradientPeer } from '../engine/training/gradientPeer';
import { trainStep } from '../engine/training/trainStep';
import { ENCODERS } from '../engine/network/pretrainedUNet';
import { DEFAULT_ENCODER, type EncoderKind } from '../protocol/encoderKind';
import { buildNetwork, networkFor } from '../engine/network/networks';
import { countParameters, estimateFlops, networkStride } from '../engine/network/resUNet';
import {
  DEFAULT_TILES,
  defaultRefine,
  effectiveTileSize,
  mirrorsImage,
  predictImage,
  tileOrigins,
} from '../engine/inference/tiledPredict';
import { PIXEL_FEATURE_COUNT } from '../engine/inference/pixelFeatures';
import { PIXEL_FEATURE_SET } from '../engine/inference/pixelHead';
import { DEFAULT_PIXEL_HEAD_FIT } from '../engine/training/pixelHeadFit';
import type { PixelHeadWeights } from '../protocol/modelTypes';
import { CancelledError } from '../protocol/errors';
import { median } from '../masks/statistics';
import type { MaskImage } from '../masks/maskImage';
import { panningFrames } from '../synthetic/panningFrames';
import { suggestFromNeighbours } from '../engine/inference/sequenceSuggestion';
import { forgetFlows } from '../engine/inference/opticalFlow';
import { encoderOnnx } from '../engine/inference/splitForward';

function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * Measures pre-label latency per image size (median of repeats, tiled as in use) and training
 * throughput (median step time) of the default network on the running backend, with achieved GFLOP/s.
 */
/**
 * The default fine-tune round as a person meets it: `images` generated images of size x size (shapes on
 * textured noise), a fresh default model, the default settings, one in five images held out for validation.
 */
export async function runFineTuneRound(
  images: number,
  size: number,
  signal: AbortSignal,
  epochs = DEFAULT_FINE_TUNE.epochs,
  cropSize = DEFAULT_FINE_TUNE.cropSize,
  encoder: EncoderKind = DEFAULT_ENCODER,
  gradientThreads = DEFAULT_FINE_TUNE.gradientThreads,
  trainingRuntime = DEFAULT_FINE_TUNE.trainingRuntime,
): Promise<FineTuneRoundResult> {
  const network = networkFor(encoder, 3);
  const model = await buildNetwork(network);
  try {
    const samples = Array.from({ length: images }, (_, i) => ({
      id: `bench_${i}`,
      ...syntheticSample({ width: size, height: size, numClasses: 3, seed: 9000 + i }),
    }));
    const validation = samples.filter((_, i) => i % 5 === 4);
    const train = samples.filter((_, i) => i % 5 !== 4);
    const tiles = { ...DEFAULT_TILES, refine: defaultRefine(encoder), stride: networkStride(network) };
    const started = performance.now();
    const r = await fineTune(
      model,
      train,
      validation,
      { ...DEFAULT_FINE_TUNE, epochs, cropSize, gradientThreads, trainingRuntime },
      tiles,
      {
        signal,
      },
    );
    return {
      images,
      size,
      cropSize: r.cropSize,
      trainImages: train.length,
      validationImages: validation.length,
      seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
      steps: r.steps,
      epochs: r.history.length,
      peakRssMiB: Math.round(peakRssMiB()),
      changedFractionBefore: r.metricsBefore?.changedFraction ?? null,
      changedFractionAfter: r.metricsAfter?.changedFraction ?? null,
      boundaryIoUBefore: r.metricsBefore?.boundaryIoU ?? null,
      boundaryIoUAfter: r.metricsAfter?.boundaryIoU ?? null,
      threads: r.threads.reason,
      timing: r.timing,
    };
  } finally {
    releaseFolded(model);
    await releaseOnnx(model);
    model.dispose();
  }
}

export async function runBench(
  backend: string,
  p: RequestMap['bench']['params'],
  signal: AbortSignal,
): Promise<BenchResult> {
  // The round first, so the peak RSS it reports is its own and not the 4096x4096 pre-label's.
  const encoder = p.encoder ?? DEFAULT_ENCODER;
  const fineTuneRound = p.fineTuneRound
    ? await runFineTuneRound(
        p.fineTuneRound.images,
        p.fineTuneRound.size,
        signal,
        p.fineTuneRound.epochs,
        p.fineTuneRound.cropSize,
        encoder,
        p.fineTuneRound.threads,
        p.fineTuneRound.runtime,
      )
    : undefined;
  const propagationMs = p.propagationSizes?.length
    ? await timePropagation(p.propagationSizes, p.repeats, signal)
    : undefined;
  const network = networkFor(encoder, 2);
  const model = await buildNetwork(network);
  const stride = networkStride(network);
  const rng = new SeededRandom(7);
  // Pre-labels as a fine-tuned model makes them: with a pixel head of the size a fine-tune stores.
  const tiles = { ...DEFAULT_TILES, refine: defaultRefine(encoder), stride, pixelHead: timingPixelHead(2, rng) };
  const prelabelMs: Record<string, number> = {};
  const prelabelGflops: Record<string, number> = {};
  try {
    for (const size of p.sizes) {
      const data = new Uint8Array(size * size * 3);
      for (let i = 0; i < data.length; i++) data[i] = rng.int(0, 256);
      const image = { width: size, height: size, data };
      await predictImage(model, { width: 32, height: 32, data: data.subarray(0, 32 * 32 * 3) }, tiles); // warm-up
      const times: number[] = [];
      const repeats = size >= 2048 ? 1 : p.repeats;
      for (let r = 0; r < repeats; r++) {
        if (signal.aborted) throw new CancelledError();
        const t = performance.now();
        await predictImage(model, image, tiles);
        times.push(performance.now() - t);
      }
      const ms = median(times);
      // FLOPs actually computed: every tile, padded to the stride.
      const tileSize = effectiveTileSize(tiles, inferenceReport().runtime === 'onnxruntime');
      const xs = tileOrigins(size, tileSize, tileSize - tiles.overlap, stride);
      let flops = 0;
      for (const y0 of xs)
        for (const x0 of xs) {
          const h = Math.ceil(Math.min(tileSize + stride, size - y0) / stride) * stride;
          const w = Math.ceil(Math.min(tileSize + stride, size - x0) / stride) * stride;
          flops += estimateFlops(model, h, w) * (mirrorsImage(tiles, size, size) ? 2 : 1);
        }
      prelabelMs[String(size)] = Math.round(ms);
      prelabelGflops[String(size)] = Number((flops / 1e9 / (ms / 1000)).toFixed(2));
    }
    const n = p.batchSize;
    const c = p.cropSize;
    // Random crops as training makes them (image in [-1, 1], labels of 2 classes, a boundary band).
    const crops: Crop[] = Array.from({ length: n }, () => ({
      x: Float32Array.from({ length: c * c * 3 }, () => rng.range(-1, 1)),
      y: Int32Array.from({ length: c * c }, () => rng.int(0, 2)),
      band: Float32Array.from({ length: c * c }, () => (rng.range(0, 1) < 0.2 ? 1 : 0)),
    }));
    const copies = (): Crop[] => crops.map((k) => ({ x: k.x.slice(), y: k.y.slice(), band: k.band.slice() }));
    const trainable = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const kernels = model.trainableWeights.filter((w) => w.name.includes('kernel')).map((w) => w.read());
    const loss = { dice: 0.5, boundary: 1, weightDecay: DEFAULT_FINE_TUNE.weightDecay };
    // Forward, plus backward (~2x forward) through the trainable layers only: a frozen encoder has no backward.
    const trainFlops =
      n * (estimateFlops(model, c, c) + 2 * estimateFlops(model, c, c, (layer) => layer.trainableWeights.length > 0));
    const timeSteps = async (threads: 1 | 2 | 'onnx'): Promise<BenchTrain | null> => {
      // Two threads where a fine-tune would use them (never on native TensorFlow, which uses every core itself).
      let onnx: OnnxTrainer | null = null;
      if (threads === 'onnx') {
        const o = loadOrt();
        const graph = o ? buildTrainingGraph(model, trainable, n, c, loss) : null;
        if (!o || !graph || 'unsupported' in graph || inferenceReport().runtime !== 'onnxruntime') return null;
        onnx = await OnnxTrainer.create(o, graph, sessionOptions(true), { kind: 'adam', learningRate: 1e-3 });
      }
      const started =
        threads === 'onnx'
          ? { peer: null, count: onnxThreads(), reason: `onnxruntime, ${onnxThreads()} threads` }
          : threads === 2
            ? await startGradientPeer(model, 0)
            : { peer: null, count: 1, reason: 'one thread' };
      const optimizer = tf.train.adam(1e-3);
      const stepMs: number[] = [];
      try {
        for (let s = 0; s < p.trainSteps + 1; s++) {
          if (signal.aborted) throw new CancelledError();
          const t = performance.now();
          await trainStep(
            { model, optimizer, trainable, kernels, size: c, weights: loss, onnx },
            copies(),
            started.peer,
            s === 0,
          );
          if (s > 0) stepMs.push(performance.now() - t); // the first step compiles, allocates and sends every weight
        }
      } finally {
        optimizer.dispose();
        await started.peer?.close();
        await onnx?.release();
      }
      const med = median(stepMs);
      return {
        threads: started.count,
        reason: started.reason,
        cropSize: c,
        batchSize: n,
        steps: stepMs.length,
        medianStepMs: Math.round(med),
        cropsPerSecond: Number((n / (med / 1000)).toFixed(2)),
        gflops: Number((trainFlops / 1e9 / (med / 1000)).toFixed(2)),
      };
    };
    const train = (await timeSteps(1))!;
    const twoThreads = (await timeSteps(2))!;
    const onnxSteps = await timeSteps('onnx');
    // The frozen encoder's share of a step: its forward pass on the batch, alone (TF.js, and onnxruntime
    // where the steps ran through it).
    const encoderMs = await timeEncoderForward(model, crops, c, p.trainSteps);
    const encoderOnnxMs = onnxSteps ? await timeEncoderForwardOnnx(model, crops, c, p.trainSteps) : null;
    return {
      backend,
      inference: inferenceReport(),
      encoder,
      parameters: countParameters(model).total,
      trainableParameters: countParameters(model).trainable,
      prelabelMs,
      prelabelGflops,
      train: { ...train, encoderForwardMs: encoderMs },
      ...(twoThreads.threads === 2 ? { trainTwoThreads: twoThreads } : {}),
      ...(onnxSteps ? { trainOnnx: { ...onnxSteps, encoderForwardMs: encoderOnnxMs } } : {}),
      peakRssMiB: Math.round(peakRssMiB()),
      ...(fineTuneRound ? { fineTuneRound } : {}),
      ...(propagationMs ? { propagationMs } : {}),
    };
  } finally {
    releaseFolded(model);
    await releaseOnnx(model);
    model.dispose();
  }
}

/**
 * Median milliseconds of the frozen encoder's forward pass on a batch of crops (the feature maps the decoder
 * reads), or null for a network without a pretrained encoder.
 */
async function timeEncoderForward(
  model: tfl.LayersModel,
  crops: Crop[],
  size: number,
  repeats: number,
): Promise<number | null> {
  const kind = Object.values(ENCODERS).find((e) => e.features.every((f) => model.layers.some((l) => l.name === f)));
  if (!kind) return null;
  const encoder = tfl.model({
    inputs: model.inputs,
    outputs: kind.features.map((f) => model.getLayer(f).output as tfl.SymbolicTensor),
  });
  const x = tf.tensor4d(Float32Array.from(crops.flatMap((k) => [...k.x])), [crops.length, size, size, 3]);
  const times: number[] = [];
  try {
    for (let r = 0; r < repeats + 1; r++) {
      const t = performance.now();
      const out = encoder.predict(x) as tf.Tensor[];
      await Promise.all(out.map((o) => o.data()));
      tf.dispose(out);
      if (r > 0) times.push(performance.now() - t);
    }
  } finally {
    x.dispose();
  }
  return Math.round(median(times));
}

/**
 * Median milliseconds of the frozen encoder's forward pass on a batch of crops through onnxruntime, as the
 * training graph computes it (channels-first maps), or null where it does not export or onnxruntime is missing.
 */
async function timeEncoderForwardOnnx(
  model: tfl.LayersModel,
  crops: Crop[],
  size: number,
  repeats: number,
): Promise<number | null> {
  const o = loadOrt();
  const exported = o ? await encoderOnnx(model) : null;
  if (!o || !exported) return null;
  const session = await o.InferenceSession.create(exported.bytes, sessionOptions(true));
  const image = new o.Tensor('float32', Float32Array.from(crops.flatMap((k) => [...k.x])), [
    crops.length,
    size,
    size,
    3,
  ]);
  const times: number[] = [];
  try {
    for (let r = 0; r < repeats + 1; r++) {
      const t = performance.now();
      await session.run({ image });
      if (r > 0) times.push(performance.now() - t);
    }
  } finally {
    await session.release();
  }
  return Math.round(median(times));
}

/** A pixel head of the size a fine-tune stores, with random weights: its time does not depend on them. */
function timingPixelHead(classes: number, rng: SeededRandom): PixelHeadWeights {
  const inputs = PIXEL_FEATURE_COUNT + classes;
  const hidden = DEFAULT_PIXEL_HEAD_FIT.hidden;
  const random = (n: number): number[] => Array.from({ length: n }, () => rng.range(-0.5, 0.5));
  return {
    features: PIXEL_FEATURE_SET,
    inputs,
    hidden,
    classes,
    mean: new Array<number>(inputs).fill(0),
    scale: new Array<number>(inputs).fill(1),
    w1: random(inputs * hidden),
    b1: random(hidden),
    w2: random(hidden * classes),
    b2: random(classes),
  };
}

/**
 * A propagation step's time at each size, median of `repeats` after one warm-up (which loads OpenCV): the
 * third frame follows the second, with the first giving the track record, and a model as sure as a trained
 * one (its predictions are the truth, 80% sure; the time does not depend on them).
 */
async function timePropagation(
  sizes: { width: number; height: number }[],
  repeats: number,
  signal: AbortSignal,
): Promise<Record<string, number>> {
  // As many classes as the street sets (CamVid's 11): the fusion's cost grows with them.
  const classes = 11;
  const out: Record<string, number> = {};
  for (const { width, height } of sizes) {
    const [beyond, near, frame] = panningFrames(width, height, classes, 4242);
    const prediction = (mask: MaskImage) => {
      const probabilities = new Float32Array(width * height * classes).fill(0.1);
      for (let i = 0; i < mask.data.length; i++) probabilities[i * classes + Math.min(mask.data[i], classes - 1)] = 0.8;
      return { classMap: mask.data.slice(), confidence: new Uint8Array(mask.data.length).fill(204), probabilities };
    };
    const model = prediction(frame.mask);
    const nearModel = prediction(near.mask);
    const times: number[] = [];
    for (let r = 0; r <= repeats; r++) {
      if (signal.aborted) throw new CancelledError();
      // Each step computes its flows: none is found kept from the step before.
      forgetFlows();
      const t = performance.now();
      await suggestFromNeighbours(frame.image, [near, beyond], model, classes, nearModel);
      if (r > 0) times.push(performance.now() - t);
    }
    out[`${width}x${height}`] = Math.round(median(times));
  }
  return out;
}
