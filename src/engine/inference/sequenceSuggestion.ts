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

export interface SequenceSuggestion extends FusedPrediction {
  /** Share of carried pixels that carrying got wrong on the previous pair of reviewed frames; null without one. */
  trackRecordError: number | null;
}

/**
 * The suggestion for `frame` given its reviewed neighbours, nearest first (`neighbours[1]`, when present and of
 * the same size, gives the track record) and the model's prediction (`probabilities` absent for an untrained
 * model: the carried mask and its likelihoods alone then decide).
 */
export async function suggestFromNeighbours(
  frame: RgbImage,
  neighbours: ReviewedFrame[],
  model: { classMap: Uint8Array; confidence: Uint8Array; probabilities?: Float32Array },
  classes: number,
  settings: FusionSettings = DEFAULT_FUSION,
): Promise<SequenceSuggestion> {
  const [near, beyond] = neighbours;
  const carried = await carryBetween(near, frame, classes);
  let record: TrackRecord | null = null;
  if (beyond && beyond.image.width === near.image.width && beyond.image.height === near.image.height)
    record = trackRecord(await carryBetween(beyond, near.image, classes), near.mask, classes);
  const trackRecordError = record ? recordErrorShare(record) : null;
  const likelihoods = carriedLikelihoods(record, classes, settings);
  // An untrained model's prior: the classes' shares on the neighbour once a track record can outweigh them;
  // without one, none (the carried mask is then the suggestion, as a person opening the next frame expects).
  const shares = record ? classShares(near.mask, classes) : undefined;
  const fused = fuseWithCarried(model, carried, likelihoods, classes, settings, shares);
  return { ...fused, trackRecordError };
}
