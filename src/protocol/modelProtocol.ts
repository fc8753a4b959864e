// The typed protocol between a host (the extension or the CLI) and the model process. Requests carry an
// id; the process answers each with exactly one `result` or `error`, and may stream `progress` before.
// Binary data travels as typed arrays (the channel uses structured-clone serialisation), never number[].

import type { DoctorReport } from './doctorTypes';
import type { BackendReport, FineTuneSettings } from './settings';
import type { ClassList } from '../masks/classList';
import type { EncoderKind } from './encoderKind';
import type {
  FineTuneProgress,
  FineTuneTiming,
  ModelMeta,
  NetworkOptions,
  TrainingFit,
  VersionManifest,
} from './modelTypes';
import type { MetricSummary, MaskMetrics } from '../masks/segmentationMetrics';

/**
 * The most reviewed frames a prediction reads as neighbours (RequestMap.predict's `neighbours`): the one it
 * follows and up to nine more, whose pairs train the sequence head (seven pairs for the suggestion's head,
 * the seven beyond the nearest for the head tried on the neighbour first), each pair with the frame beyond
 * it as a second observation.
 */
export const MAX_NEIGHBOURS = 10;

/**
 * The neighbours of a followed suggestion without the sequence head: the one it follows and the one that gives
 * carrying's track record. The head learns from the pairs beyond them, so a request with more neighbours
 * takes seconds longer; the editor first asks with these two for a quick suggestion.
 */
export const QUICK_NEIGHBOURS = 2;

export interface PairRef {
  image: string;
  mask: string;
}

export interface ModelRef {
  /** Model folder (`.maskloop/model` by default). */
  modelDir: string;
  /** Create the default untrained model when the folder holds none. */
  createIfMissing?: boolean;
  /** Class list for a model created here; absent, the classes seen in the masks, or background + 1. */
  classes?: ClassList;
  /** Encoder of a model created here; absent, the default (the shipped pretrained MobileNetV2). */
  encoder?: EncoderKind;
  /** Architecture options of a model created here (ablations); absent, the defaults. */
  network?: NetworkOptions;
}

export interface ModelSummary {
  meta: ModelMeta;
  parameters: number;
  gflopsAt512: number;
  created: boolean;
}

/** What each request carries and what its result is. */
export interface RequestMap {
  info: {
    params: Record<string, never>;
    result: { backend: BackendReport; inference: InferenceReport; node: string; pid: number };
  };
  /** Every backend checked (installed, loads, usable, why not, the fix), timed on the usable ones with `time`. */
  doctor: { params: { time: boolean }; result: DoctorReport };
  describe: { params: ModelRef; result: ModelSummary };
  predict: {
    params: ModelRef & {
      image: string;
      tileSize?: number;
      /** Average with the mirror image's prediction: always, never; default: up to 2048 x 2048 pixels. */ mirror?: boolean;
      /** Refine the edges with the guided filter: always, never; default: up to 2048 x 2048 pixels. */ refine?: boolean;
      /**
       * Reviewed neighbouring frames of a sequence, nearest first: the suggestion follows the nearest one's mask,
       * carried along the optical flow and fused with the model's prediction; a second one gives carrying's
       * track record. Neighbours of another size are not followed (`followed.skipped` says so). When the model
       * folder holds no model yet and `classes` is given, the nearest neighbour's mask is carried alone
       * (`modelVersion` 0, `trained` false): a sequence is followed from its first reviewed frame on.
       * Up to MAX_NEIGHBOURS consecutive reviewed frames, nearest first: each one after the first, carried onto
       * the one before it, teaches the sequence head what carrying gets wrong in this sequence.
       */
      neighbours?: PairRef[];
      /**
       * Two reviewed frames, the nearer to this image first, in place of `neighbours[0]` and `[1]` for the track
       * record and its check (the second's mask carried onto the first): for a frame that follows a frame whose
       * mask is a suggestion, as in Propagate to Next Frames, where no truth is there to measure carrying against.
       */
      trackRecord?: [PairRef, PairRef];
    };
    result: {
      width: number;
      height: number;
      classMap: Uint8Array;
      confidence: Uint8Array;
      modelVersion: number;
      trained: boolean;
      seconds: number;
      /** When neighbours were given: which one was followed and how, or why none was. */
      followed?: FollowedNeighbour;
    };
  };
  evaluate: {
    params: ModelRef & { pairs: PairRef[] };
    result: { modelVersion: number; perImage: (MaskMetrics & { image: string })[]; mean: MetricSummary };
  };
  fineTune: {
    params: ModelRef & {
      pairs: PairRef[];
      datasetManifest: string;
      settings?: Partial<FineTuneSettings>;
      workspaceRoot: string;
      /** A click model: learnt edges for its answers are fitted on the saved masks (ModelMeta.clickEdges). */
      clickModel?: ClickModelFiles;
    };
    result: {
      version: number;
      parent: number;
      accepted: boolean;
      reason: string;
      current: number;
      metricsBefore: MetricSummary | null;
      metricsAfter: MetricSummary | null;
      trainImages: number;
      validationImages: number;
      seconds: number;
      steps: number;
      epochs: number;
      /** The crop size and colour augmentation used, and why (the automatic hue jitter says what it found); the context head's fit, if any. */
      augmentation: string;
      /** The new version on its own training images; `learnedNothing` keeps it aside (unless forced) and `reason` says why and what to do. */
      trainingFit: TrainingFit;
      /** The pixel head's fit: on how many pixels, its loss and time, whether it was kept and why. */
      pixelHead: string;
      /** The learnt edges for click answers: fitted or not, on what, kept for which classes, or why not. */
      clickEdges: string;
      /** How many threads computed the gradients, and why. */
      threads: string;
      /** Where the fine-tune's time went, in seconds. */
      timing: FineTuneTiming;
    };
  };
  versions: {
    params: { modelDir: string };
    result: {
      current: number | null;
      versions: VersionManifest[];
      unreadable: { version: number | null; reason: string }[];
    };
  };
  rollback: { params: { modelDir: string; version: number }; result: { current: number } };
  /** Loads a click-segmentation pair and checks its layout. */
  clickCheck: {
    params: { model: ClickModelFiles };
    result: { layout: 'sam' | 'sam2'; inputSize: number };
  };
  /** Loads a click-segmentation pair (checking its layout) and computes or finds the image's embedding. */
  clickPrepare: {
    params: ClickTarget;
    result: {
      layout: 'sam' | 'sam2';
      inputSize: number;
      width: number;
      height: number;
      embedding: EmbeddingSource;
      seconds: number;
    };
  };
  /** The candidate masks for a prompt on an image, best predicted IoU first. */
  clickSegment: {
    params: ClickTarget & {
      prompt: ClickPromptParams;
      /**
       * A maskloop model whose current version's learnt edges (fitted by a fine-tune given this click model)
       * redraw the answer's edge when they were kept for `classIndex`, the object's class.
       */
      edges?: { modelDir: string; classIndex: number };
    };
    result: {
      width: number;
      height: number;
      /** Each candidate: 1 inside, 0 outside, width x height; its predicted IoU; its pixel count. */
      candidates: { mask: Uint8Array; score: number; area: number }[];
      /** The number of this answer, for a later prompt's `continueFrom` (with the candidate chosen). */
      answer: number;
      /** Whether learnt edges redrew the candidates' edges. */
      learntEdges: boolean;
      /** Whether the suggested region (ClickPromptParams.suggested) is the first candidate. */
      fromSuggestion: boolean;
      /**
       * The crop the answer was made on (zoom-in, ClickPromptParams.zoom) and where its embedding came from;
       * null when it was made on the whole image.
       */
      zoom: { box: { x0: number; y0: number; x1: number; y1: number }; embedding: EmbeddingSource } | null;
      embedding: EmbeddingSource;
      seconds: number;
    };
  };
  bench: {
    params: {
      encoder?: EncoderKind;
      sizes: number[];
      repeats: number;
      trainSteps: number;
      cropSize: number;
      batchSize: number;
      fineTuneRound?: {
        images: number;
        size: number;
        epochs?: number;
        cropSize?: number;
        threads?: number;
        runtime?: 'auto' | 'tfjs';
      };
      /** Frame sizes at which to time a propagation step (following a neighbour); none when absent. */
      propagationSizes?: { width: number; height: number }[];
    };
    result: BenchResult;
  };
}

/** A SAM-family encoder/decoder pair (`*.encoder.onnx`, `*.decoder.onnx`) for click segmentation. */
export interface ClickModelFiles {
  encoder: string;
  decoder: string;
}

/** Click segmentation's prompt, in image pixel coordinates (continuous: pixel x covers [x, x + 1)). */
export interface ClickPromptParams {
  /** Clicks: positive adds the point to the object, negative takes it out. */
  points: { x: number; y: number; positive: boolean }[];
  /** A box around the object. */
  box?: { x0: number; y0: number; x1: number; y1: number };
  /** A region to refine (the decoder's mask prompt): 1 inside, 0 outside, width x height of the image. */
  region?: Uint8Array;
  /**
   * The fine-tuned model's suggested region under a first click (the connected region of the object's class
   * holding it; 1 inside, width x height of the image). It answers the click as the first candidate, the
   * decoder's answer second, where the decoder's answer to the click covers at least half its size
   * (SUGGESTED_REGION_RATIO); else the decoder's answer stands alone. A prompt continuing from it refines it on
   * the whole image, as `region` does. Only with a single positive click: ignored with more points, a negative
   * one, a region, a box or `continueFrom`.
   */
  suggested?: Uint8Array;
  /**
   * Give the decoder its own answer to the previous prompt on this image (the chosen candidate's
   * low-resolution logits) as the mask prompt, as SAM's interactive loop does; ignored with a region.
   */
  continueFrom?: { answer: number; candidate: number };
  /**
   * Zoom-in (default on): once there is an answer continued from, or a box, answer on a crop around it and the
   * clicks, which the encoder enlarges (its embedding computed once per crop); a region given is refined on the
   * whole image; false: always on the whole image.
   */
  zoom?: boolean;
  /**
   * Honour every click (default on): each candidate's edge is drawn at the decoder's logit (near its own 0)
   * that keeps the most clicks, moving it out or in as they say; where a candidate still leaves out a positive
   * click's pixel, or takes in a negative one's, the pixels around it of a close colour (a few pixels' reach)
   * are added or removed.
   */
  honour?: boolean;
}

/** Where an image's embedding came from: kept in memory, read from the cache folder, or computed now. */
export type EmbeddingSource = 'memory' | 'disk' | 'computed';

export interface ClickTarget {
  model: ClickModelFiles;
  image: string;
  /** Folder of cached embeddings (keyed by the image's pixels and the encoder's bytes); none: memory only. */
  cacheDir?: string;
}

/** How a suggestion followed a reviewed neighbouring frame (RequestMap.predict). */
export type FollowedNeighbour =
  | {
      kind: 'followed';
      /** The neighbour's image. */
      image: string;
      /** Share of the pixels whose suggested class is the carried one. */
      followsCarried: number;
      /** Carrying's error on the previous pair of reviewed frames (the track record); null without one. */
      trackRecordError: number | null;
      /** Pairs of neighbouring reviewed frames the sequence head learnt from; 0 or absent: none. */
      learnedPairs?: number;
    }
  | { kind: 'skipped'; reason: string };

/** Which runtime pre-labels (onnxruntime when installed and its export checks out, else TF.js), and why. */
export interface InferenceReport {
  runtime: 'onnxruntime' | 'tfjs';
  reason: string;
}

export interface BenchResult {
  backend: string;
  /** Runtime of the pre-label timings; training always runs on the TF.js backend. */
  inference: InferenceReport;
  /** The encoder of the benchmarked network (the default one unless asked). */
  encoder: EncoderKind;
  parameters: number;
  trainableParameters: number;
  prelabelMs: Record<string, number>;
  prelabelGflops: Record<string, number>;
  /** Training steps on one thread, with the frozen encoder's forward pass on the batch alone beside them. */
  train: BenchTrain & { encoderForwardMs: number | null };
  /** The same steps with the batch split over two threads (gradientPeer.ts), when a second could start. */
  trainTwoThreads?: BenchTrain;
  /**
   * The same steps through onnxruntime's training graph (onnxTraining.ts), where it covers the network, with
   * the frozen encoder's forward pass on the batch alone through onnxruntime beside them.
   */
  trainOnnx?: BenchTrain & { encoderForwardMs: number | null };
  peakRssMiB: number;
  /** The default fine-tune round on generated images (measured first, in a fresh model process). */
  fineTuneRound?: FineTuneRoundResult;
  /**
   * Median milliseconds of a propagation step per frame size ("480x360"): a frame's suggestion following its
   * neighbour, with the track record from the frame beyond and the check on the neighbour, given the model's
   * predictions of both (four optical flows, two carries, the fusions).
   */
  propagationMs?: Record<string, number>;
}

export interface BenchTrain {
  /** Threads that computed each step's gradients, and why. */
  threads: number;
  reason: string;
  cropSize: number;
  batchSize: number;
  steps: number;
  medianStepMs: number;
  cropsPerSecond: number;
  gflops: number;
}

export interface FineTuneRoundResult {
  images: number;
  size: number;
  cropSize: number;
  trainImages: number;
  validationImages: number;
  seconds: number;
  steps: number;
  epochs: number;
  /** Peak RSS of the model process by the end of the round. */
  peakRssMiB: number;
  /** Held-out pixels to correct (changed-pixel fraction) before and after the round. */
  changedFractionBefore: number | null;
  changedFractionAfter: number | null;
  boundaryIoUBefore: number | null;
  boundaryIoUAfter: number | null;
  /** Threads that computed the gradients, and why. */
  threads: string;
  /** Where the round's time went, in seconds. */
  timing: FineTuneTiming;
}

export type RequestType = keyof RequestMap;

export type ModelRequest = {
  [K in RequestType]: { kind: 'request'; id: number; type: K; params: RequestMap[K]['params'] };
}[RequestType];

export type HostMessage = ModelRequest | { kind: 'cancel'; id: number };

export type ProgressEvent =
  | { type: 'fineTune'; progress: FineTuneProgress }
  | { type: 'prepare'; message: string; done: number; total: number }
  | { type: 'tiles'; done: number; total: number };

export type ErrorKind = 'input' | 'model' | 'cancelled' | 'internal';

export type ModelMessage =
  | { kind: 'ready'; pid: number }
  | { kind: 'result'; id: number; result: RequestMap[RequestType]['result'] }
  | { kind: 'error'; id: number; errorKind: ErrorKind; message: string }
  | { kind: 'progress'; id: number; event: ProgressEvent }
  | { kind: 'log'; message: string };
