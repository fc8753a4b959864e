// Suggestions that follow the neighbouring frame: the neighbour's reviewed mask is carried to this frame along
// the optical flow between the two, and fused with the model's prediction pixel by pixel. How far the carried
// label is trusted depends on where the pixel lies (on the carried boundary or deep inside a region, where the
// forward and backward flows agree or not) and on how well carrying did on the previous pair of reviewed
// frames: its track record. Pure: the flows come in as arrays (opticalFlow.ts computes them).
import { IGNORE_INDEX, type MaskImage, type RgbImage } from '../../masks/maskImage';
import { guidedFilterProbabilities } from './guidedFilter';

/** Distance bins (in pixels, chessboard, to the carried boundary): 0, 1, 2-3, 4-7, 8-15, 16 and more. */
const DISTANCE_BINS = [0, 1, 2, 4, 8, 16];
/** Cells: a distance bin times whether the forward and backward flows agree there. */
export const PROPAGATION_CELLS = DISTANCE_BINS.length * 2;
/** The cell of a pixel that received no label (it came from outside the frame or from an ignore pixel). */
export const NO_CELL = 255;

/** A mask carried from a neighbouring frame onto this one. */
export interface CarriedMask {
  width: number;
  height: number;
  /** The carried label per pixel; IGNORE_INDEX where nothing was carried. */
  labels: Uint8Array;
  /** Each pixel's cell (distance bin x flow agreement), NO_CELL where nothing was carried. */
  cells: Uint8Array;
}

function binOf(distance: number): number {
  let b = 0;
  while (b + 1 < DISTANCE_BINS.length && distance >= DISTANCE_BINS[b + 1]) b++;
  return b;
}

/** Chessboard distance of every pixel to the nearest `seed` pixel, capped at 255 (two-pass chamfer). */
export function chessboardDistance(seed: Uint8Array, width: number, height: number): Uint8Array {
  const d = new Uint8Array(width * height).fill(255);
  for (let i = 0; i < d.length; i++) if (seed[i]) d[i] = 0;
  const relax = (i: number, j: number): void => {
    if (d[j] + 1 < d[i]) d[i] = d[j] + 1;
  };
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (x > 0) relax(i, i - 1);
      if (y > 0) {
        relax(i, i - width);
        if (x > 0) relax(i, i - width - 1);
        if (x < width - 1) relax(i, i - width + 1);
      }
    }
  for (let y = height - 1; y >= 0; y--)
    for (let x = width - 1; x >= 0; x--) {
      const i = y * width + x;
      if (x < width - 1) relax(i, i + 1);
      if (y < height - 1) {
        relax(i, i + width);
        if (x < width - 1) relax(i, i + width + 1);
        if (x > 0) relax(i, i + width - 1);
      }
    }
  return d;
}

/**
 * Carries `mask` (the neighbour's) onto this frame. `backward` is the flow from this frame to the neighbour
 * (where each pixel of this frame is found in the neighbour), `forward` the flow from the neighbour to this
 * frame; both interleaved u, v per pixel. A pixel takes the label of the neighbour's pixel nearest to where
 * it is found; the flows agree there when going back and forth returns to the start (Sundaram et al. 2010:
 * |w + w'|^2 < 0.01 (|w|^2 + |w'|^2) + 0.5), which they do not at occlusions and where the flow is wrong.
 */
export function carryMask(
  mask: MaskImage,
  backward: Float32Array,
  forward: Float32Array,
  classes: number,
): CarriedMask {
  const { width: W, height: H } = mask;
  const n = W * H;
  if (backward.length !== 2 * n || forward.length !== 2 * n)
    throw new Error(`flows of ${backward.length / 2} and ${forward.length / 2} pixels for a ${W}x${H} mask`);
  const labels = new Uint8Array(n).fill(IGNORE_INDEX);
  const agree = new Uint8Array(n);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      const u = backward[2 * i];
      const v = backward[2 * i + 1];
      const sx = Math.round(x + u);
      const sy = Math.round(y + v);
      if (sx < 0 || sy < 0 || sx >= W || sy >= H) continue;
      const j = sy * W + sx;
      const label = mask.data[j];
      if (label >= classes) continue;
      labels[i] = label;
      const fu = forward[2 * j];
      const fv = forward[2 * j + 1];
      const du = u + fu;
      const dv = v + fv;
      agree[i] = du * du + dv * dv < 0.01 * (u * u + v * v + fu * fu + fv * fv) + 0.5 ? 1 : 0;
    }
  // The carried boundary: pixels with a 4-neighbour of another carried label.
  const edge = new Uint8Array(n);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      const a = labels[i];
      if (a === IGNORE_INDEX) continue;
      const other = (j: number): boolean => labels[j] !== IGNORE_INDEX && labels[j] !== a;
      if (
        (x > 0 && other(i - 1)) ||
        (x < W - 1 && other(i + 1)) ||
        (y > 0 && other(i - W)) ||
        (y < H - 1 && other(i + W))
      )
        edge[i] = 1;
    }
  const distance = chessboardDistance(edge, W, H);
  const cells = new Uint8Array(n).fill(NO_CELL);
  for (let i = 0; i < n; i++) if (labels[i] !== IGNORE_INDEX) cells[i] = binOf(distance[i]) * 2 + agree[i];
  return { width: W, height: H, labels, cells };
}

/**
 * How carrying did on a pair whose true mask is known: per cell, how often each class was carried onto a pixel
 * of each true class (`counts[(cell * classes + carried) * classes + truth]`).
 */
export interface TrackRecord {
  classes: number;
  counts: Float64Array;
}

/** Carrying's track record against the truth of the frame it was carried to. */
export function trackRecord(carried: CarriedMask, truth: MaskImage, classes: number): TrackRecord {
  const k = classes;
  const counts = new Float64Array(PROPAGATION_CELLS * k * k);
  for (let i = 0; i < truth.data.length; i++) {
    const cell = carried.cells[i];
    const t = truth.data[i];
    if (cell === NO_CELL || t >= k) continue;
    counts[(cell * k + carried.labels[i]) * k + t]++;
  }
  return { classes: k, counts };
}

/** The share of carried pixels a track record found wrong, over all cells. */
export function recordErrorShare(record: TrackRecord): number {
  const k = record.classes;
  let total = 0;
  let wrong = 0;
  for (let cell = 0; cell < PROPAGATION_CELLS; cell++)
    for (let c = 0; c < k; c++)
      for (let t = 0; t < k; t++) {
        const n = record.counts[(cell * k + c) * k + t];
        total += n;
        if (c !== t) wrong += n;
      }
  return total === 0 ? 0 : wrong / total;
}

export interface FusionSettings {
  /** The error rate a carried label is assumed to have where no track record says otherwise. */
  priorError: number;
  /** How many pixels' worth (per true class) the prior weighs against the whole track record. */
  priorPixels: number;
  /** How many pixels' worth (per true class) the whole track record weighs against one cell's. */
  cellPixels: number;
  /** Factor on the model's log-probabilities: below 1 tempers a model that is surer than it is right. */
  modelWeight: number;
  /**
   * Radius in pixels of the colour guided filter that snaps the fused probabilities to the frame's edges
   * (snapToEdges); 0 leaves them as fused.
   */
  snapRadius: number;
}

/**
 * The prior's error, the model's weight and the snapping radius were chosen on the first halves of the real
 * sets (docs/benchmarks.md).
 */
export const DEFAULT_FUSION: FusionSettings = {
  priorError: 0.1,
  priorPixels: 20,
  cellPixels: 200,
  modelWeight: 1,
  snapRadius: 2,
};

/**
 * Per cell, the log-likelihood of each carried class given each true class, log P(carried | truth)
 * (`[(cell * classes + carried) * classes + truth]`), estimated in two levels: the whole track record's
 * frequencies drawn toward the prior (right with probability 1 - priorError, else any other class alike) by
 * priorPixels pixels' worth per true class, and each cell's frequencies drawn toward those by cellPixels.
 * Carrying between frames that are no sequence carries the same classes whatever the truth: the likelihoods
 * are then flat and the carried label weighs nothing.
 */
export function carriedLikelihoods(
  record: TrackRecord | null,
  classes: number,
  settings: FusionSettings = DEFAULT_FUSION,
): Float64Array {
  const k = classes;
  const count = (cell: number, c: number, t: number): number => (record ? record.counts[(cell * k + c) * k + t] : 0);
  const pooled = new Float64Array(k * k);
  const other = k > 1 ? settings.priorError / (k - 1) : 0;
  for (let t = 0; t < k; t++) {
    let n = 0;
    for (let cell = 0; cell < PROPAGATION_CELLS; cell++) for (let c = 0; c < k; c++) n += count(cell, c, t);
    for (let c = 0; c < k; c++) {
      let seen = 0;
      for (let cell = 0; cell < PROPAGATION_CELLS; cell++) seen += count(cell, c, t);
      const prior = c === t ? 1 - settings.priorError : other;
      pooled[c * k + t] = (seen + settings.priorPixels * prior) / (n + settings.priorPixels);
    }
  }
  const out = new Float64Array(PROPAGATION_CELLS * k * k);
  for (let cell = 0; cell < PROPAGATION_CELLS; cell++)
    for (let t = 0; t < k; t++) {
      let n = 0;
      for (let c = 0; c < k; c++) n += count(cell, c, t);
      for (let c = 0; c < k; c++) {
        const p = (count(cell, c, t) + settings.cellPixels * pooled[c * k + t]) / (n + settings.cellPixels);
        out[(cell * k + c) * k + t] = Math.log(Math.max(1e-6, p));
      }
    }
  return out;
}

export interface FusedPrediction {
  classMap: Uint8Array;
  confidence: Uint8Array;
  /** Share of the pixels whose suggested class is the carried one. */
  followsCarried: number;
  /** The fused class probabilities, interleaved per pixel (width x height x classes). */
  probabilities: Float32Array;
}

/**
 * The suggestion: per pixel, the class y that maximises modelWeight x log p(y) + log P(carried label | y) for
 * the pixel's cell (carriedLikelihoods): Bayes' rule with the carried label as a second, independent
 * observation. Without the model's probabilities (an untrained model) the prior is `classShares` (each
 * class's share of the pixels, as on the neighbour), the model's class winning ties: frames that are no
 * sequence, whose likelihoods are flat, keep it. Pixels that received nothing keep the model's class.
 */
export function fuseWithCarried(
  model: { classMap: Uint8Array; confidence: Uint8Array; probabilities?: Float32Array },
  carried: CarriedMask,
  likelihoods: Float64Array,
  classes: number,
  settings: FusionSettings = DEFAULT_FUSION,
  classShares?: Float64Array,
): FusedPrediction {
  const n = carried.width * carried.height;
  const k = classes;
  const classMap = new Uint8Array(n);
  const confidence = new Uint8Array(n);
  const probabilities = new Float32Array(n * k);
  const score = new Float64Array(k);
  const probs = model.probabilities;
  let follows = 0;
  for (let i = 0; i < n; i++) {
    const cell = carried.cells[i];
    const label = carried.labels[i];
    if (cell === NO_CELL) {
      classMap[i] = model.classMap[i];
      confidence[i] = model.confidence[i];
      if (probs) probabilities.set(probs.subarray(i * k, i * k + k), i * k);
      else probabilities[i * k + Math.min(model.classMap[i], k - 1)] = 1;
      continue;
    }
    const row = (cell * k + label) * k;
    let best = 0;
    for (let y = 0; y < k; y++) {
      const prior = probs
        ? settings.modelWeight * Math.log(Math.max(1e-6, probs[i * k + y]))
        : Math.log(Math.max(1e-6, classShares?.[y] ?? 1 / k)) + (y === model.classMap[i] ? 1e-6 : 0);
      score[y] = prior + likelihoods[row + y];
      if (score[y] > score[best]) best = y;
    }
    let total = 0;
    for (let y = 0; y < k; y++) total += Math.exp(score[y] - score[best]);
    for (let y = 0; y < k; y++) probabilities[i * k + y] = Math.exp(score[y] - score[best]) / total;
    classMap[i] = best;
    confidence[i] = Math.round(255 / total);
    if (best === label) follows++;
  }
  return { classMap, confidence, followsCarried: n === 0 ? 0 : follows / n, probabilities };
}

/**
 * The fused probabilities snapped to the frame's colour edges: the colour guided filter (guidedFilter.ts) of
 * radius `settings.snapRadius`, then argmax. A carried boundary lands a pixel or two off the object's edge
 * where the flow is smooth across it; the filter moves it onto the edge. On the first half of street-15hz,
 * carrying alone got 3.15% of the pixels wrong, and 2.61% snapped (radius 2; 1-3 gave 2.61-2.64%).
 */
export function snapToEdges(
  fused: FusedPrediction,
  carried: CarriedMask,
  frame: RgbImage,
  classes: number,
  settings: FusionSettings = DEFAULT_FUSION,
): FusedPrediction {
  if (settings.snapRadius <= 0) return fused;
  const k = classes;
  const n = frame.width * frame.height;
  const probabilities = guidedFilterProbabilities(
    frame.data,
    fused.probabilities,
    frame.height,
    frame.width,
    k,
    { radius: settings.snapRadius, eps: SNAP_EPS },
    1 / 255,
    0,
  );
  const classMap = new Uint8Array(n);
  const confidence = new Uint8Array(n);
  let follows = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let y = 1; y < k; y++) if (probabilities[i * k + y] > probabilities[i * k + best]) best = y;
    classMap[i] = best;
    confidence[i] = Math.round(255 * Math.min(1, Math.max(0, probabilities[i * k + best])));
    if (carried.cells[i] !== NO_CELL && carried.labels[i] === best) follows++;
  }
  return { classMap, confidence, followsCarried: n === 0 ? 0 : follows / n, probabilities };
}

/** The guided filter's ridge term for snapping (colours in [0, 1]); 1e-4 to 3e-3 did alike. */
const SNAP_EPS = 1e-3;
