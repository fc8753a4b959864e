// A frame's suggestion in a sequence: the nearest reviewed neighbour's mask carried along the optical flow and
// fused with the model's prediction (propagation.ts), with carrying's track record measured on the
// neighbour and the frame beyond it when both are reviewed.
import type { MaskImage, RgbImage } from '../../masks/maskImage';
import { denseFlow } from './opticalFlow';
import {
  DEFAULT_FUSION,
  carryMask,
  carriedLikelihoods,
  fuseWithCarried,
  recordErrorShare,
  snapToEdges,
  trackRecord,
  type CarriedMask,
  type FusedPrediction,
  type FusionSettings,
  type TrackRecord,
} from './propagation';

export interface ReviewedFrame {
  image: RgbImage;
  mask: MaskImage;
}

/** Carries `from`'s mask onto `to` (flows both ways). */
export async function carryBetween(from: ReviewedFrame, to: RgbImage, classes: number): Promise<CarriedMask> {
  const backward = await denseFlow(to, from.image);
  const forward = await denseFlow(from.image, to);
  return carryMask(from.mask, backward, forward, classes);
}

/** Each class's share of a mask's labelled pixels (one pixel added to each, so none is zero). */
function classShares(mask: MaskImage, classes: number): Float64Array {
  const out = new Float64Array(classes).fill(1);
  for (const v of mask.data) if (v < classes) out[v]++;
  const total = out.reduce((a, b) => a + b, 0);
  return out.map((v) => v / total);
}

export interface SequenceSuggestion extends Omit<FusedPrediction, 'probabilities'> {
  /** Share of carried pixels that carrying got wrong on the previous pair of reviewed frames; null without one. */
  trackRecordError: number | null;
  /**
   * On the neighbour itself, the share of labelled pixels the model's prediction and the fused one got wrong
   * (when its prediction was given); `followed` is false when fusing did not do better there.
   */
  check: { modelError: number; fusedError: number } | null;
  followed: boolean;
}

type ModelPrediction = { classMap: Uint8Array; confidence: Uint8Array; probabilities?: Float32Array };

/** Share of a mask's labelled pixels that a class map gets wrong. */
function errorShare(classMap: Uint8Array, truth: MaskImage, classes: number): number {
  let labelled = 0;
  let wrong = 0;
  for (let i = 0; i < truth.data.length; i++) {
    if (truth.data[i] >= classes) continue;
    labelled++;
    if (classMap[i] !== truth.data[i]) wrong++;
  }
  return labelled === 0 ? 0 : wrong / labelled;
}

/**
 * The suggestion for `frame` given its reviewed neighbours, nearest first (`neighbours[1]`, when present and of
 * the same size, gives the track record) and the model's prediction (`probabilities` absent for an untrained
 * model: the carried mask and its likelihoods alone then decide).
 *
 * With a track record and the model's prediction of the nearest neighbour (`nearModel`), the fusion is first
 * tried on that neighbour, whose mask is known: when it does no better there than the model alone (frames
 * that are no sequence, a flow that fails), the model's prediction is the suggestion.
 */
export async function suggestFromNeighbours(
  frame: RgbImage,
  neighbours: ReviewedFrame[],
  model: ModelPrediction,
  classes: number,
  nearModel?: ModelPrediction,
  settings: FusionSettings = DEFAULT_FUSION,
): Promise<SequenceSuggestion> {
  const [near, beyond] = neighbours;
  const carried = await carryBetween(near, frame, classes);
  let record: TrackRecord | null = null;
  let carriedOntoNear: CarriedMask | null = null;
  if (beyond && beyond.image.width === near.image.width && beyond.image.height === near.image.height) {
    carriedOntoNear = await carryBetween(beyond, near.image, classes);
    record = trackRecord(carriedOntoNear, near.mask, classes);
  }
  const trackRecordError = record ? recordErrorShare(record) : null;
  const likelihoods = carriedLikelihoods(record, classes, settings);
  // An untrained model's prior: the classes' shares on the neighbour once a track record can outweigh them;
  // without one, none (the carried mask is then the suggestion, as a person opening the next frame expects).
  const shares = record ? classShares(near.mask, classes) : undefined;
  let check: SequenceSuggestion['check'] = null;
  if (carriedOntoNear && nearModel) {
    const fusedNear = fuseWithCarried(nearModel, carriedOntoNear, likelihoods, classes, settings, shares);
    const tried = snapToEdges(fusedNear, carriedOntoNear, near.image, classes, settings);
    check = {
      modelError: errorShare(nearModel.classMap, near.mask, classes),
      fusedError: errorShare(tried.classMap, near.mask, classes),
    };
    if (check.fusedError >= check.modelError)
      return { ...model, followsCarried: 0, trackRecordError, check, followed: false };
  }
  const fused = snapToEdges(
    fuseWithCarried(model, carried, likelihoods, classes, settings, shares),
    carried,
    frame,
    classes,
    settings,
  );
  return {
    classMap: fused.classMap,
    confidence: fused.confidence,
    followsCarried: fused.followsCarried,
    trackRecordError,
    check,
    followed: true,
  };
}
