// The sequence head: what carrying gets wrong in this sequence, learnt from its reviewed frames. Each pair of
// neighbouring reviewed frames is an example: the earlier frame's mask carried onto the later one (the snapped
// carried mask, as propagation.ts gives it without a model, with the frame before it as a second observation:
// carriedView.ts), and the later frame's true mask. A pixel head (pixelHead.ts: the frame's filter features,
// the carried view's planes and the log of its carried probabilities, one hidden layer) fitted on those
// pixels learns where carried edges land against this sequence's own hand-drawn edges, where the flow can be
// trusted, and which colours and textures belong to which class; the frame being suggested is then read
// through it.
import type { MaskImage, RgbImage } from '../../masks/maskImage';
import { SeededRandom } from '../../masks/seededRandom';
import type { PixelHeadWeights } from '../../protocol/modelTypes';
import { DEFAULT_PIXEL_HEAD_FIT, fitPixelHead, samplePixels, type PixelSamples } from '../training/pixelHeadFit';
import { viewFeatures, type CarriedView } from './carriedView';
import { runPixelHead } from './pixelHeadOnnx';
import {
  DEFAULT_FUSION,
  NO_CELL,
  carriedLikelihoods,
  fuseWithCarried,
  snapToEdges,
  type CarriedMask,
  type FusionSettings,
} from './propagation';

/**
 * A pair of neighbouring reviewed frames, as the head learns from it: labelled pixels of the later frame drawn
 * at random, each with its filter features and the log of the earlier frame's mask carried onto it, and its
 * true class. Only the draw is kept (drawPair), not the frames, so a pair costs the same whatever the images'
 * size.
 */
export interface SequencePair {
  samples: PixelSamples;
}

/**
 * Weight of the model's log-probabilities against the sequence head's when both are there: the suggestion
 * is argmax(MODEL_WEIGHT x log p_model + log p_head). Chosen on the first halves of the real sets
 * (docs/benchmarks.md, "Frames as a sequence").
 */
export const SEQUENCE_HEAD_MODEL_WEIGHT = 0.25;

/** Labelled pixels drawn from each pair: a head fitted on SEQUENCE_HEAD_MAX_PAIRS pairs reads about 60,000. */
export const SEQUENCE_HEAD_PAIR_SAMPLES = 8_600;

/**
 * The most pairs a head is fitted on: the suggestion's head on the record pair and the six nearest beyond it,
 * the head tried on the neighbour on the seven nearest beyond the record pair. So the head tried on a frame's
 * neighbour is the very head that frame's neighbour was suggested with, and walking down a sequence fits one
 * head per frame (SequenceHeadCache).
 */
export const SEQUENCE_HEAD_MAX_PAIRS = 7;

/** Passes over the drawn pixels: 15 for a run of 7 pairs, more for fewer, so every fit takes as many steps. */
const EPOCHS_AT_7_PAIRS = 15;

/**
 * A carried mask as probabilities, with no model: the carried label believed at the prior's error rate
 * (no track record), then snapped to the frame's colour edges. Pixels that received nothing are uniform.
 */
export function carriedProbabilities(
  carried: CarriedMask,
  frame: RgbImage,
  classes: number,
  settings: FusionSettings = DEFAULT_FUSION,
): Float32Array {
  const n = carried.width * carried.height;
  const none = { classMap: new Uint8Array(n), confidence: new Uint8Array(n) };
  const fused = fuseWithCarried(none, carried, carriedLikelihoods(null, classes, settings), classes, settings);
  for (let i = 0; i < n; i++)
    if (carried.cells[i] === NO_CELL) fused.probabilities.fill(1 / classes, i * classes, (i + 1) * classes);
  return snapToEdges(fused, carried, frame, classes, settings).probabilities;
}

/**
 * Share of a pair's drawn pixels taken from within SEQUENCE_HEAD_BAND pixels of the carried mask's edges (the
 * rest from anywhere). Chosen on the first halves of the real sets (docs/benchmarks.md, "The sequence head").
 */
export const SEQUENCE_HEAD_BAND_SHARE = 0.5;
export const SEQUENCE_HEAD_BAND = 4;

/** Pixels within `band` pixels (chessboard) of an edge of the carried mask's most likely class, in index order. */
export function carriedBand(
  carried: Float32Array,
  width: number,
  height: number,
  classes: number,
  band: number,
): Int32Array {
  const n = width * height;
  const top = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (carried[i * classes + c] > carried[i * classes + best]) best = c;
    top[i] = best;
  }
  const edge = new Uint8Array(n);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if ((x + 1 < width && top[i + 1] !== top[i]) || (y + 1 < height && top[i + width] !== top[i])) edge[i] = 1;
    }
  // The edge pixels dilated by `band`: along rows, then along columns.
  const rows = new Uint8Array(n);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      if (edge[y * width + x])
        for (let xx = Math.max(0, x - band); xx <= Math.min(width - 1, x + band); xx++) rows[y * width + xx] = 1;
  const near = new Uint8Array(n);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      if (rows[y * width + x])
        for (let yy = Math.max(0, y - band); yy <= Math.min(height - 1, y + band); yy++) near[yy * width + x] = 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (near[i]) out.push(i);
  return Int32Array.from(out);
}

/**
 * Draws a pair's pixels: `frame` (the later frame), its true `mask`, and the earlier frame's mask carried onto
 * it as carriedView gives it. Seeded: the same pair and seed draw the same pixels.
 */
export async function drawPair(
  frame: RgbImage,
  mask: MaskImage,
  view: CarriedView,
  classes: number,
  seed = 0,
): Promise<SequencePair> {
  const samples: PixelSamples = { xs: [], ys: [] };
  const item = { image: frame, mask, probs: view.probabilities };
  const rng = new SeededRandom(seed + 7919);
  const features = viewFeatures(view, frame.width);
  // Half the pixels from anywhere, half from near the carried edges, where carrying goes wrong.
  const inBand = carriedBand(view.probabilities, frame.width, frame.height, classes, SEQUENCE_HEAD_BAND);
  const banded = inBand.length > 0 ? Math.round(SEQUENCE_HEAD_BAND_SHARE * SEQUENCE_HEAD_PAIR_SAMPLES) : 0;
  await samplePixels(item, classes, SEQUENCE_HEAD_PAIR_SAMPLES - banded, rng, samples, features);
  if (banded > 0) await samplePixels(item, classes, banded, rng, samples, features, inBand);
  return { samples };
}

/**
 * Fits the sequence head on the pairs' drawn pixels (seeded: the same pairs and seed give the same head).
 * Null when no pixel is labelled.
 */
export async function fitSequenceHead(
  pairs: SequencePair[],
  classes: number,
  seed = 0,
  check: () => void = () => undefined,
): Promise<PixelHeadWeights | null> {
  const samples: PixelSamples = { xs: [], ys: [] };
  for (const pair of pairs) {
    // Copies: the fit standardises its inputs in place, and a pair is kept for the next fit.
    for (const x of pair.samples.xs) samples.xs.push(x.slice());
    samples.ys.push(...pair.samples.ys);
  }
  if (samples.xs.length === 0) return null;
  const epochs = Math.round((EPOCHS_AT_7_PAIRS * 7 * SEQUENCE_HEAD_PAIR_SAMPLES) / samples.xs.length);
  const fit = await fitPixelHead(samples, classes, { ...DEFAULT_PIXEL_HEAD_FIT, epochs, seed }, check);
  return fit?.head ?? null;
}

export interface HeadSuggestion {
  classMap: Uint8Array;
  confidence: Uint8Array;
}

/**
 * The frame read through the head (through onnxruntime where it runs, else in JS): its carried view
 * (carriedView) in, a class per pixel out. With the model's probabilities, per pixel
 * argmax(modelWeight x log p_model + log p_head).
 */
export async function applySequenceHead(
  head: PixelHeadWeights,
  frame: RgbImage,
  view: CarriedView,
  classes: number,
  modelProbabilities?: Float32Array,
  modelWeight = SEQUENCE_HEAD_MODEL_WEIGHT,
): Promise<HeadSuggestion> {
  const k = classes;
  const out = await runPixelHead(head, frame, view.probabilities, viewFeatures(view, frame.width));
  const n = frame.width * frame.height;
  const classMap = new Uint8Array(n);
  const confidence = new Uint8Array(n);
  const score = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 0; c < k; c++) {
      const model = modelProbabilities ? modelWeight * Math.log(Math.max(1e-4, modelProbabilities[i * k + c])) : 0;
      score[c] = model + Math.log(Math.max(1e-4, out[i * k + c]));
      if (score[c] > score[best]) best = c;
    }
    let total = 0;
    for (let c = 0; c < k; c++) total += Math.exp(score[c] - score[best]);
    classMap[i] = best;
    confidence[i] = Math.round(255 / total);
  }
  return { classMap, confidence };
}

/** What fits a head on pairs of a sequence: fitSequenceHead itself, or a SequenceHeadCache's `fit`. */
export type SequenceHeadFitter = (pairs: SequencePair[], classes: number) => Promise<PixelHeadWeights | null>;

/**
 * Heads fitted on the same pairs, kept: a fit is seeded, so the same pairs (the same drawn objects, in the same
 * order) give the same head, and the head a frame's suggestion was read through is the one tried on that frame
 * when the next frame is suggested. Pairs are told apart by identity: a pair drawn again (its files changed) is
 * another object, so a head is never reused for pixels it was not fitted on.
 */
export class SequenceHeadCache {
  private readonly ids = new WeakMap<SequencePair, number>();
  private nextId = 0;
  private readonly heads = new Map<string, PixelHeadWeights | null>();
  /** Heads fitted (not found kept) so far. */
  fits = 0;

  constructor(private readonly capacity = 4) {}

  /**
   * A kept head, else one fitted (`onFit` called first: a fit takes about a second at seven pairs; `check`
   * between its epochs, and may throw to stop it: nothing is then kept).
   */
  readonly fit = async (
    pairs: SequencePair[],
    classes: number,
    onFit: () => void = () => undefined,
    check: () => void = () => undefined,
  ): Promise<PixelHeadWeights | null> => {
    const key = [classes, ...pairs.map((p) => this.id(p))].join(',');
    if (this.heads.has(key)) {
      const head = this.heads.get(key) ?? null;
      // The most recently used is kept longest.
      this.heads.delete(key);
      this.heads.set(key, head);
      return head;
    }
    onFit();
    const head = await fitSequenceHead(pairs, classes, 0, check);
    this.fits++;
    this.heads.set(key, head);
    for (const old of this.heads.keys()) {
      if (this.heads.size <= this.capacity) break;
      this.heads.delete(old);
    }
    return head;
  };

  private id(pair: SequencePair): number {
    let id = this.ids.get(pair);
    if (id === undefined) this.ids.set(pair, (id = this.nextId++));
    return id;
  }
}
