// Settings and names every process shares: which backends exist, the fine-tune's settings and defaults. No
// TensorFlow.js, no Node APIs: the CLI, the extension host and the webview read these without loading the
// engine, and the engine imports them from here.

/** The backends maskloop can run on, fastest first. */
export const BACKEND_ORDER = ['webgpu', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_ORDER)[number];
export type BackendChoice = BackendName | 'auto';

export interface BackendAttempt {
  backend: BackendName;
  ok: boolean;
  reason: string;
}

export interface BackendReport {
  backend: BackendName;
  /** The tfjs backend name actually set ("tensorflow", "wasm", "cpu"). */
  tfBackend: string;
  label: string;
  attempts: BackendAttempt[];
  simd?: boolean;
  threads?: number;
  /** The GPU adapter's name, on WebGPU. */
  adapter?: string;
  tfjsVersion: string;
}

/** Whether a backend computes on a GPU. */
export function onGpuBackend(name: BackendName): boolean {
  return name === 'webgpu' || name === 'tensorflow-gpu';
}

export function isBackendChoice(value: string): value is BackendChoice {
  return value === 'auto' || (BACKEND_ORDER as readonly string[]).includes(value);
}

/** The product's default fine-tune round; every field can be set from the CLI or the extension. */
export interface FineTuneSettings {
  /** Epochs of decoder training; 0 = fit only the context head (the fast fine-tune; training/contextHeadFit.ts). */
  epochs: number;
  /**
   * Optimiser steps per epoch; 0 = automatic: two crops per training image, at least 16 steps (a few images
   * need that many to be learnt at all: with 4 steps of 2 crops, 9 composite scenes gave 7.0% pixels to
   * correct on the next 8, with 16 steps 4.3%) and at most 32; half that with 256-pixel crops (see
   * stepsPerEpoch).
   */
  stepsPerEpoch: number;
  batchSize: number;
  /**
   * Training crop size in pixels (rounded up to a multiple of 16); 0 = automatic (see resolveCropSize): 256
   * with a pretrained encoder, 128 from scratch.
   */
  cropSize: number;
  learningRate: number;
  optimizer: 'adam' | 'sgd';
  /** L2 weight decay on convolution kernels. */
  weightDecay: number;
  diceWeight: number;
  boundaryWeight: number;
  /** Half-width in pixels of the band around class edges that the boundary term weights. */
  boundaryRadius: number;
  /** Share of crops centred on a class boundary. */
  boundaryBias: number;
  colorJitter: number;
  /**
   * Hue/saturation jitter of training crops, 0-1 (see AugmentOptions.hueJitter), or 'auto': off when two
   * classes are told apart by colour in the training masks, else 0.5 (see resolveHueJitter).
   */
  hueJitter: number | 'auto';
  seed: number;
  /** Epochs without a better validation boundary IoU before stopping early. */
  patience: number;
  /** The new version becomes current only if validation boundary IoU fell by at most this much... */
  maxBoundaryDrop: number;
  /**
   * ...and its validation changed-pixel fraction (what a person would repaint) rose by at most this much. A
   * model fine-tuned on one or two images can paint most of the next image as objects while its boundary IoU
   * still rises from the cold start's zero; this keeps such a version from becoming current.
   */
  maxChangedRise: number;
  /** Make the new version current whatever its validation metrics. */
  force: boolean;
  /**
   * Pretrained encoder only: how many of its stages a full fine-tune unfreezes, deepest first, one at a time
   * (the epochs are split into N + 1 equal phases; phase k also trains the k deepest stages). 0 = the encoder
   * stays frozen: the fast mode, and the default on CPU.
   */
  encoderStages: number;
  /**
   * Strength of the class-prior correction (0 = off, 1 = the full correction). Training crops are biased
   * toward class boundaries, so they hold more object pixels than the images do, and a model trained on them
   * paints objects too readily. After training, log(image prior / crop prior) of each class, times this
   * strength, is added to the head's bias (logit adjustment for a known sampling shift).
   */
  priorCorrection: number;
  /**
   * Fit the pixel head after the network (engine/inference/pixelHead.ts): a per-pixel perceptron over filter
   * features of the image and the network's probabilities, kept only where validation does not get worse.
   */
  pixelHead: boolean;
  /**
   * Threads that compute the gradients of each step where training runs on one thread (WebAssembly, plain
   * JS): 0 = automatic (two on a machine with two cores or more); 1 = one; 2 = two, each on its share of the
   * batch (engine/training/gradientPeer.ts). Native TensorFlow uses every core itself: always one there.
   */
  gradientThreads: number;
  /**
   * Where the training steps run: 'auto' = through onnxruntime (native kernels, every core; the training graph
   * of engine/training/onnxTraining.ts) where it loads and covers the network, else TF.js; 'tfjs' = TF.js.
   */
  trainingRuntime: 'auto' | 'tfjs';
}

export const DEFAULT_FINE_TUNE: FineTuneSettings = {
  epochs: 8,
  stepsPerEpoch: 0,
  batchSize: 2,
  cropSize: 0,
  learningRate: 2e-3,
  optimizer: 'adam',
  weightDecay: 1e-4,
  diceWeight: 0.5,
  boundaryWeight: 1,
  boundaryRadius: 3,
  boundaryBias: 0.5,
  colorJitter: 0.1,
  hueJitter: 'auto',
  seed: 0,
  patience: 8,
  maxBoundaryDrop: 0.02,
  maxChangedRise: 0.02,
  force: false,
  encoderStages: 0,
  priorCorrection: 1,
  pixelHead: true,
  gradientThreads: 0,
  trainingRuntime: 'auto',
};

/** The automatic crop size under a frozen pretrained encoder, and from scratch. */
export const PRETRAINED_CROP = 256;
export const SCRATCH_CROP = 128;

/** The smallest training crop the CLI (`--crop`) and the extension (`maskloop.fineTune.cropSize`) accept. */
export const MIN_CROP_SIZE = 16;

/** The editor's defaults for `maskloop.maskOpacity` and `maskloop.wandTolerance`. */
export const EDITOR_DEFAULTS = { maskOpacity: 0.5, wandTolerance: 24 } as const;
