// The model's types as the processes exchange them and the store writes them: the network's configuration,
// a model's metadata, a version's manifest, a fine-tune's progress and training check. Types only: nothing
// here loads TensorFlow.js or Node APIs (the engine implements them and re-exports these).
import type { ClassList } from '../masks/classList';
import type { MetricSummary } from '../masks/segmentationMetrics';
import type { EncoderKind } from './encoderKind';

/** Architecture of the segmentation network; stored in every model's metadata. */
export interface NetworkConfig {
  /** Number of output classes (background included). */
  numClasses: number;
  /** Channels of the full-resolution stem, then of each encoder stage (each stage halves the resolution). */
  stemWidth: number;
  stageWidths: number[];
  /** Residual basic blocks per encoder stage. */
  blocksPerStage: number;
  /** false builds the same layer widths without the identity/projection adds (ablation). */
  residual: boolean;
  /** Batch-norm momentum: 0.9, not Keras's 0.99, so moving statistics follow a short fine-tune. */
  bnMomentum: number;
  /** Seed of the weight initialisers. */
  seed: number;
  /**
   * Encoder: 'scratch' (absent in models written before it existed) builds the residual encoder above from
   * random weights; 'mobilenetv2' and 'distilled-resnet' put a shipped pretrained encoder under the same
   * residual decoder (`pretrainedUNet.ts`), and then `stageWidths` are the decoder's widths at strides 2, 4, 8 and 16.
   */
  encoder?: EncoderKind;
  /** Pretrained encoder only: its stages (from the deepest) whose weights train; 0 = frozen. */
  encoderTrainableStages?: number;
  /**
   * Pretrained encoder only: a context head (contextHead.ts), a linear read-out of the encoder's stride-8 and
   * stride-16 features fitted on whole training images, added to the decoder's logits. Absent = none (models
   * written before it existed).
   */
  contextHead?: boolean;
  /**
   * Spatial dropout rate in the decoder's blocks (whole channels dropped while training, between the block's two
   * convolutions); absent or 0 = none. An option against over-fitting a handful of images (README, "Real data").
   */
  decoderDropout?: number;
}

/** The architecture options a person may set on a new model (the ablations of the real-data benchmark). */
export type NetworkOptions = Partial<Pick<NetworkConfig, 'residual' | 'decoderDropout'>>;

/** What maskloop records about a model, inside its model.json (userDefinedMetadata.maskloop). */
export interface ModelMeta {
  format: 'maskloop-model';
  formatVersion: 1;
  version: number;
  parent: number | null;
  createdAt: string;
  network: NetworkConfig;
  classes: ClassList;
  /** Which encoder weights the model started from. */
  encoder: string;
  /** false until a fine-tune has been accepted in this model's lineage. */
  trained: boolean;
  /** The class-prior correction in the head's bias (absent: none), taken off before the next fine-tune. */
  priorCorrection?: number[];
  /** SHA-256 of the version's weights.bin, checked on every load (absent in models written before it existed). */
  weightsSha256?: string;
  /** The pixel head fitted by the last fine-tune that kept one (absent: suggestions are the network's). */
  pixelHead?: PixelHeadWeights;
  /** Learnt edges for click answers, fitted by the last fine-tune given a click model (absent: none). */
  clickEdges?: ClickEdgesWeights;
}

/**
 * Learnt edges for click answers (engine/click/clickEdges.ts): a perceptron with one hidden layer that redraws
 * the pixels near a click answer's edge. Inputs are standardised with `mean` and `scale` first; `w1` is row-major
 * (input x hidden).
 */
export interface ClickEdgesWeights {
  /** The feature set's name; a head of another set (or of the wrong sizes) is not run. */
  features: string;
  /** The click model whose answers it was fitted on (ClickModelFiles' names and sizes); others are not redrawn. */
  clickModel: string;
  /** Classes of the model (the features' one-hot size). */
  classes: number;
  /** The classes whose answers it redraws: those it improved on held-out saved masks. */
  redrawn: number[];
  inputs: number;
  hidden: number;
  mean: number[];
  scale: number[];
  w1: number[];
  b1: number[];
  w2: number[];
  b2: number;
}

/**
 * The pixel head (engine/inference/pixelHead.ts): a perceptron with one hidden layer that reads, per pixel,
 * filter features of the image and the network's log-probabilities, and gives the class probabilities.
 * Inputs are standardised with `mean` and `scale` first; weights are row-major (input x hidden, hidden x class).
 */
export interface PixelHeadWeights {
  /** The feature set's name; a head fitted on another set (or of the wrong sizes) is not run: the network suggests alone. */
  features: string;
  inputs: number;
  hidden: number;
  classes: number;
  mean: number[];
  scale: number[];
  w1: number[];
  b1: number[];
  w2: number[];
  b2: number[];
}

/** The per-version record in versions/NNNN/manifest.json. */
export interface VersionManifest {
  version: number;
  parent: number | null;
  createdAt: string;
  backend: string;
  accepted: boolean;
  reason: string;
  settings?: Record<string, unknown>;
  /** The fine-tune's crop size and colour augmentation, and why (the automatic hue jitter says what it found); the context head's fit, if any. */
  augmentation?: string;
  /** The context head's fit: stride-8 cells of whole images, its final loss, its time, where its regression ran. */
  contextHead?: { cells: number; loss: number; seconds: number; runtime?: 'onnxruntime' | 'tfjs' };
  /** The version on its own training images: whether it learned anything, with the figures (trainingCheck.ts). */
  trainingFit?: TrainingFit;
  /** The pixel head's fit: on how many pixels, its loss and time, whether it was kept and why. */
  pixelHead?: string;
  /** The learnt edges for click answers: fitted or not, kept for which classes, or why not. */
  clickEdges?: string;
  /** How many threads computed the gradients, and why. */
  threads?: string;
  /** Where the fine-tune's time went, in seconds: context head, training steps, validation, pixel head, check. */
  timing?: FineTuneTiming;
  train?: { image: string; mask: string; sha256: string }[];
  validation?: { image: string; mask: string; sha256: string }[];
  metricsBefore?: Record<string, number> | null;
  metricsAfter?: Record<string, number> | null;
  history?: { epoch: number; loss: number; val?: Record<string, number> }[];
  seconds?: number;
}

export interface FineTuneTiming {
  contextHead: number;
  training: number;
  /** Of `training`, the seconds spent making the training crops (data preparation). */
  crops?: number;
  validation: number;
  pixelHead: number;
  check: number;
}

export interface TrainingFit {
  /** Training images checked. */
  images: number;
  /** Mean share of labelled pixels a person would change in the version's suggestion on its training images. */
  changedFraction: number;
  /** The same for an empty suggestion (all background): the share of labelled pixels that are objects. */
  emptyFraction: number;
  /** Share of the training masks' object pixels the version suggests as some object class. */
  objectRecall: number;
  /** The check's verdict, and in words what it found, the likely cause and what to do. */
  learnedNothing: boolean;
  reason: string;
}

export interface FineTuneProgress {
  phase: 'train' | 'validate';
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  val?: MetricSummary;
  etaSeconds: number;
}
