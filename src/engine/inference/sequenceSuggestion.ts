// A frame's suggestion in a sequence: the nearest reviewed neighbour's mask carried along the optical flow and
// fused with the model's prediction (propagation.ts), with carrying's track record measured on the
// neighbour and the frame beyond it when both are reviewed.
import type { MaskImage, RgbImage } from '../../masks/maskImage';
import { denseFlow } from './opticalFlow';
import { carriedView } from './carriedView';
import {
  SEQUENCE_HEAD_MAX_PAIRS,
  applySequenceHead,
  drawPair,
  fitSequenceHead,
  type SequenceHeadFitter,
  type SequencePair,
} from './sequenceHead';
import {
  DEFAULT_FUSION,
  NO_CELL,
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
   * On the record pair's nearer frame, the share of labelled pixels the model's prediction and the fused one
   * got wrong (when its prediction was given; Infinity without one where the head was tried), and the sequence
   * head fitted without that frame's pair (when it was tried); `followed` is false when neither the fusion nor
   * the head did better than the model there.
   */
  check: { modelError: number; fusedError: number; headError?: number } | null;
  followed: boolean;
  /** Pairs of reviewed frames the sequence head learnt from (sequenceHead.ts); 0 when it was not used. */
  learnedPairs: number;
  /** The record pair's draw, when the head was tried: the next frame's head learns from it too. */
  recordDraw?: SequencePair;
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
 * A fusion without the model's probabilities (no model yet, or an untrained one) is the carried mask: it is
 * snapped to the frame's edges (snapToEdges). With them it is left as fused: the model's own edge refinement
 * and pixel head have drawn the edges, and on the generated composite scenes (unrelated images) snapping the
 * fusion cost 4.2% -> 4.7-5.0% of pixels to change (docs/benchmarks.md).
 */
function snapWithoutModel(
  fused: FusedPrediction,
  model: ModelPrediction,
  carried: CarriedMask,
  image: RgbImage,
  classes: number,
  settings: FusionSettings,
): FusedPrediction {
  return model.probabilities ? fused : snapToEdges(fused, carried, image, classes, settings);
}

/**
 * The suggestion for `frame` given its neighbours, nearest first, and the model's prediction (`probabilities`
 * absent for an untrained model: the carried mask and its likelihoods alone then decide). The nearest
 * neighbour's mask is followed.
 *
 * The track record comes from `recordPair` (two reviewed frames, the nearer first: the farther one's mask is
 * carried onto the nearer), by default `neighbours[0]` and `neighbours[1]` when both are given and of one size.
 * A propagation down a sequence follows the previous frame's suggestion and takes the record from the last
 * two reviewed frames, since a suggestion is no truth to measure carrying against.
 *
 * With a track record and the model's prediction of the record pair's nearer frame (`recordModel`), the fusion
 * is first tried there, where the mask is known: when it does no better than the model alone (frames that are
 * no sequence, a flow that fails), the model's prediction is the suggestion.
 *
 * `history` (pairs of neighbouring reviewed frames of this sequence beyond the record pair, nearest first:
 * neighbours[2] carried onto neighbours[1], and so on) trains the sequence head (sequenceHead.ts). With one pair
 * or more, a head fitted on them (the SEQUENCE_HEAD_MAX_PAIRS nearest) is tried on neighbours[0] as the fusion
 * is; where it gets fewer pixels wrong there than the model alone (without the model's prediction there: than
 * the fusion), the suggestion is this frame's
 * carried mask read through a head fitted on the record pair (drawn here: `recordDraw`) and the nearest pairs
 * of the history (SEQUENCE_HEAD_MAX_PAIRS in all), weighed with the model's probabilities when there are any.
 * `fit` fits the heads (a SequenceHeadCache's keeps them: the head tried here is the next frame's own head).
 * `keptRecordDraw`, the record pair's draw an earlier suggestion made of the same files, is taken instead of
 * drawing it again, so the frame's head is found again when the frame is asked for again.
 */
export async function suggestFromNeighbours(
  frame: RgbImage,
  neighbours: ReviewedFrame[],
  model: ModelPrediction,
  classes: number,
  recordModel?: ModelPrediction,
  settings: FusionSettings = DEFAULT_FUSION,
  recordPair?: [ReviewedFrame, ReviewedFrame],
  history: SequencePair[] = [],
  fit: SequenceHeadFitter = fitSequenceHead,
  keptRecordDraw?: SequencePair,
): Promise<SequenceSuggestion> {
  const near = neighbours[0];
  const carried = await carryBetween(near, frame, classes);
  const [known, beyond] = recordPair ?? [near, neighbours[1]];
  let record: TrackRecord | null = null;
  let carriedOntoKnown: CarriedMask | null = null;
  if (beyond && beyond.image.width === known.image.width && beyond.image.height === known.image.height) {
    carriedOntoKnown = await carryBetween(beyond, known.image, classes);
    record = trackRecord(carriedOntoKnown, known.mask, classes);
  }
  const trackRecordError = record ? recordErrorShare(record) : null;
  const likelihoods = carriedLikelihoods(record, classes, settings);
  // An untrained model's prior: the classes' shares on the neighbour once a track record can outweigh them;
  // without one, none (the carried mask is then the suggestion, as a person opening the next frame expects).
  const shares = record ? classShares(near.mask, classes) : undefined;
  let check: SequenceSuggestion['check'] = null;
  // The fusion tried on the neighbour, where the mask is known (with the model's prediction there, if any).
  let fusedKnownError: number | null = null;
  if (carriedOntoKnown) {
    const knownModel = recordModel ?? {
      classMap: new Uint8Array(known.mask.data.length),
      confidence: new Uint8Array(known.mask.data.length),
    };
    const fusedKnown = fuseWithCarried(knownModel, carriedOntoKnown, likelihoods, classes, settings, shares);
    const tried = snapWithoutModel(fusedKnown, knownModel, carriedOntoKnown, known.image, classes, settings);
    fusedKnownError = errorShare(tried.classMap, known.mask, classes);
    if (recordModel)
      check = { modelError: errorShare(recordModel.classMap, known.mask, classes), fusedError: fusedKnownError };
  }
  // The sequence head, tried on the neighbour too: fitted without the neighbour's own pair (the record pair,
  // the frame beyond carried onto it). Between images that are no sequence it learns nothing that carries over
  // from one to the next.
  let recordDraw: SequencePair | undefined;
  if (carriedOntoKnown && fusedKnownError !== null && history.length >= 1) {
    // The frame beyond the record pair, a second observation of the pair's nearer frame (none for a record pair
    // named apart).
    const third = recordPair ? undefined : neighbours[2];
    const knownView = await carriedView(known.image, beyond, classes, third, settings);
    recordDraw = keptRecordDraw ?? (await drawPair(known.image, known.mask, knownView, classes));
    const heldOut = await fit(history.slice(0, SEQUENCE_HEAD_MAX_PAIRS), classes);
    if (heldOut) {
      const read = await applySequenceHead(heldOut, known.image, knownView, classes, recordModel?.probabilities);
      const headError = errorShare(read.classMap, known.mask, classes);
      check = { modelError: check?.modelError ?? Number.POSITIVE_INFINITY, fusedError: fusedKnownError, headError };
      // The head must do better there than not following at all: the model alone, or without a model's
      // prediction the fusion. Between the two ways of following, the head is taken: over a run of frames it
      // gets fewer pixels wrong than the fusion, while on one neighbour the two differ by less than its noise.
      const beats = headError < (recordModel ? check.modelError : fusedKnownError);
      if (beats) {
        const pairs = [recordDraw, ...history.slice(0, SEQUENCE_HEAD_MAX_PAIRS - 1)];
        const head = await fit(pairs, classes);
        if (head) {
          const here = await carriedView(frame, near, classes, neighbours[1], settings);
          const suggestion = await applySequenceHead(head, frame, here, classes, model.probabilities);
          let follows = 0;
          for (let i = 0; i < suggestion.classMap.length; i++)
            if (carried.cells[i] !== NO_CELL && carried.labels[i] === suggestion.classMap[i]) follows++;
          return {
            ...suggestion,
            followsCarried: suggestion.classMap.length === 0 ? 0 : follows / suggestion.classMap.length,
            trackRecordError,
            check,
            followed: true,
            learnedPairs: pairs.length,
            recordDraw,
          };
        }
      }
    }
  }
  if (check && check.fusedError >= check.modelError)
    return { ...model, followsCarried: 0, trackRecordError, check, followed: false, learnedPairs: 0, recordDraw };
  const fused = snapWithoutModel(
    fuseWithCarried(model, carried, likelihoods, classes, settings, shares),
    model,
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
    learnedPairs: 0,
    recordDraw,
  };
}
