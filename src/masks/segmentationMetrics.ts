import { bandFromDiagonal, classBoundaryScores } from './boundaryMetrics';
import { IGNORE_INDEX, type MaskImage } from './maskImage';

export interface MetricOptions {
  /** Boundary IoU band as a fraction of the image diagonal (default 0.02), unless bandPixels is set. */
  bandFraction?: number;
  bandPixels?: number;
  /** Boundary F-score tolerance in pixels (default 2). */
  fTolerance?: number;
}

export interface MaskMetrics {
  pixelAccuracy: number;
  /** IoU of each class present in the truth or the prediction, by class index. */
  perClassIoU: Record<number, number>;
  /** Mean IoU over classes present in truth or prediction, background included. */
  miou: number;
  /** Mean Dice over foreground classes present; 1 when neither has foreground. */
  dice: number;
  /**
   * Boundary IoU (Cheng et al. 2021, the reference band: a 3x3 erosion iterated round(0.02 x diagonal) times on
   * the zero-padded mask), averaged over the classes present in truth or prediction, background included, as
   * mIoU is averaged.
   */
  boundaryIoU: number;
  /** The same Boundary IoU averaged over the foreground classes present only; 1 when neither has foreground. */
  foregroundBoundaryIoU: number;
  /** Mean boundary F-score over foreground classes present; 1 when neither has foreground. */
  boundaryF: number;
  /** Share of non-ignore pixels a person must change to turn the prediction into the truth. */
  changedFraction: number;
}

/** Every metric of one predicted mask against its truth; pixels that are 255 (ignore) in the truth are excluded. */
export function compareMasks(truth: MaskImage, pred: MaskImage, options: MetricOptions = {}): MaskMetrics {
  const { width, height } = truth;
  if (pred.width !== width || pred.height !== height) {
    throw new Error(`cannot compare a ${pred.width}x${pred.height} prediction with a ${width}x${height} mask`);
  }
  const n = width * height;
  const valid = new Uint8Array(n);
  let validCount = 0;
  let correct = 0;
  const gtCount = new Float64Array(256);
  const predCount = new Float64Array(256);
  const interCount = new Float64Array(256);
  for (let i = 0; i < n; i++) {
    const g = truth.data[i];
    if (g === IGNORE_INDEX) continue;
    valid[i] = 1;
    validCount++;
    const p = pred.data[i];
    gtCount[g]++;
    predCount[p]++;
    if (g === p) {
      correct++;
      interCount[g]++;
    }
  }
  const perClassIoU: Record<number, number> = {};
  const present: number[] = [];
  for (let c = 0; c < 255; c++) {
    if (gtCount[c] === 0 && predCount[c] === 0) continue;
    present.push(c);
    perClassIoU[c] = interCount[c] / (gtCount[c] + predCount[c] - interCount[c]);
  }
  const fg = present.filter((c) => c !== 0);
  const band = options.bandPixels ?? bandFromDiagonal(width, height, options.bandFraction ?? 0.02);
  const tol = options.fTolerance ?? 2;
  let dice = 0;
  let bIoUBackground = 0;
  let bIoU = 0;
  let bF = 0;
  const scores = classBoundaryScores(truth.data, pred.data, width, height, band, tol, valid, present);
  for (const c of present) {
    if (c === 0) {
      bIoUBackground = scores.boundaryIoU[c];
      continue;
    }
    dice += (2 * interCount[c]) / (gtCount[c] + predCount[c]);
    bIoU += scores.boundaryIoU[c];
    bF += scores.boundaryF[c];
  }
  const mean = (sum: number, k: number): number => (k === 0 ? 1 : sum / k);
  return {
    pixelAccuracy: validCount === 0 ? 1 : correct / validCount,
    perClassIoU,
    miou: present.length === 0 ? 1 : present.reduce((s, c) => s + perClassIoU[c], 0) / present.length,
    dice: mean(dice, fg.length),
    boundaryIoU: mean(bIoU + bIoUBackground, present.length),
    foregroundBoundaryIoU: mean(bIoU, fg.length),
    boundaryF: mean(bF, fg.length),
    changedFraction: validCount === 0 ? 0 : 1 - correct / validCount,
  };
}

export type MetricSummary = Omit<MaskMetrics, 'perClassIoU'>;

/** Means over images of every scalar metric. */
export function meanMetrics(items: readonly MetricSummary[]): MetricSummary {
  const keys: (keyof MetricSummary)[] = [
    'pixelAccuracy',
    'miou',
    'dice',
    'boundaryIoU',
    'foregroundBoundaryIoU',
    'boundaryF',
    'changedFraction',
  ];
  const out = {} as MetricSummary;
  for (const k of keys) out[k] = items.length === 0 ? NaN : items.reduce((s, m) => s + m[k], 0) / items.length;
  return out;
}
