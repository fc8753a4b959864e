import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { EncoderKind } from '../protocol/encoderKind';
import type { NetworkOptions } from '../engine/network/resUNet';
import type { FineTuneSettings } from '../protocol/settings';
import { compareMasks } from '../masks/segmentationMetrics';
import type { ImageMaskPair } from '../io/datasetPairs';
import { readMask } from '../io/maskIO';
import { checkMaskUsable } from '../masks/maskValueMap';
import type { ClassList } from '../masks/classList';
import type { ModelClient } from '../modelServer/modelClient';
import { MAX_NEIGHBOURS, type ProgressEvent } from '../protocol/modelProtocol';
import { median } from '../masks/statistics';
import { fineTuneDue } from '../engine/training/fineTuneRule';

export interface SimStep {
  image: string;
  modelVersion: number;
  /** Share of pixels to repaint from the suggestion. */
  changedFraction: number;
  boundaryIoU: number;
  miou: number;
  /** Share of pixels to paint from an empty suggestion (the objects' share): the cost of Reject Suggestion. */
  emptyFraction: number;
  /**
   * In a sequence: the share of pixels whose suggestion is the previous frame's mask carried along the flow (0
   * when it was not followed: see the predict result's `followed`).
   */
  followsPrevious?: number;
  /** In a sequence: pairs of accepted frames the sequence head learnt from, when it read this suggestion. */
  learnedPairs?: number;
}

/** The effort curve in a few figures, over the images from `fromImage` (1-based) on. */
export interface SimSummary {
  fromImage: number;
  images: number;
  /** Mean share of pixels to repaint from the suggestions. */
  changedFraction: number;
  /** The median image's share. */
  medianChangedFraction: number;
  boundaryIoU: number;
  /** Mean share an empty suggestion would cost. */
  emptyFraction: number;
  /**
   * Mean of min(suggestion, empty) per image: a person who rejects a suggestion whenever painting from nothing
   * is less work (a lower bound: it assumes they can tell at a glance).
   */
  withRejectFraction: number;
  /** CPU time of all the fine-tunes. */
  fineTuneSeconds: number;
}

export interface SimFineTune {
  afterImages: number;
  version: number;
  accepted: boolean;
  /** Why it was (not) made current: the acceptance check's or the training check's words. */
  reason: string;
  seconds: number;
  trainImages: number;
  validationImages: number;
}

export interface SimResult {
  every: number;
  modelDir: string;
  steps: SimStep[];
  fineTunes: SimFineTune[];
  summary: SimSummary;
}

/** Summarises a simulated loop from the `fromImage`-th image on (the measure starts at the 3rd). */
export function summarizeSimulation(
  steps: readonly SimStep[],
  fineTunes: readonly SimFineTune[],
  fromImage = 3,
): SimSummary {
  const from = steps.length >= fromImage ? steps.slice(fromImage - 1) : steps;
  const mean = (f: (s: SimStep) => number): number =>
    from.length === 0 ? 0 : from.reduce((a, s) => a + f(s), 0) / from.length;
  const middle = from.length === 0 ? 0 : median(from.map((s) => s.changedFraction));
  return {
    fromImage: steps.length >= fromImage ? fromImage : 1,
    images: from.length,
    changedFraction: mean((s) => s.changedFraction),
    medianChangedFraction: middle,
    boundaryIoU: mean((s) => s.boundaryIoU),
    emptyFraction: mean((s) => s.emptyFraction),
    withRejectFraction: mean((s) => Math.min(s.changedFraction, s.emptyFraction)),
    fineTuneSeconds: fineTunes.reduce((a, f) => a + f.seconds, 0),
  };
}

/**
 * The labelling loop, simulated: each image in name order is pre-labelled by the current model, the
 * effort to correct it is measured against the truth, the truth is accepted as the corrected mask,
 * and the model is fine-tuned after every `every` images and after the first `firstAfter` (fineTuneRule.ts: the
 * rule the editor reminds a person of, 2 for frames of a sequence; 0 or unset: only every `every`). With `sequence`, each suggestion also follows the previous
 * accepted mask. Starts from a fresh model in its own folder.
 */
export async function simulateLoop(
  client: ModelClient,
  pairs: ImageMaskPair[],
  options: {
    every: number;
    firstAfter?: number;
    /**
     * The images are frames of a sequence in this order: each suggestion follows the previous frame's accepted
     * mask (carried along the optical flow, fused with the model), as it would for a person who accepted it.
     */
    sequence?: boolean;
    settings: Partial<FineTuneSettings>;
    classes?: ClassList;
    encoder?: EncoderKind;
    network?: NetworkOptions;
    workDir?: string;
    onStep?: (s: SimStep) => void;
    onProgress?: (e: ProgressEvent) => void;
  },
): Promise<SimResult> {
  const work = options.workDir ?? (await fs.promises.mkdtemp(path.join(os.tmpdir(), 'maskloop-sim-')));
  const modelDir = path.join(work, 'model');
  const datasetManifest = path.join(work, 'dataset.json');
  const steps: SimStep[] = [];
  const fineTunes: SimFineTune[] = [];
  const accepted: ImageMaskPair[] = [];
  for (const pair of pairs) {
    const truth = await readMask(pair.mask);
    checkMaskUsable(truth, pair.mask);
    const pred = await client.request(
      'predict',
      {
        modelDir,
        image: pair.image,
        createIfMissing: true,
        classes: options.classes,
        encoder: options.encoder,
        network: options.network,
        neighbours: options.sequence ? accepted.slice(-MAX_NEIGHBOURS).reverse() : undefined,
      },
      { onProgress: options.onProgress },
    );
    if (pred.width !== truth.width || pred.height !== truth.height)
      throw new Error(
        `${pair.mask}: mask is ${truth.width}x${truth.height}, image ${pair.image} is ${pred.width}x${pred.height}`,
      );
    const m = compareMasks(truth, { width: pred.width, height: pred.height, data: pred.classMap });
    const empty = compareMasks(truth, {
      width: truth.width,
      height: truth.height,
      data: new Uint8Array(truth.width * truth.height),
    });
    const step = {
      image: path.basename(pair.image),
      modelVersion: pred.modelVersion,
      changedFraction: m.changedFraction,
      boundaryIoU: m.boundaryIoU,
      miou: m.miou,
      emptyFraction: empty.changedFraction,
      ...(pred.followed
        ? { followsPrevious: pred.followed.kind === 'followed' ? pred.followed.followsCarried : 0 }
        : {}),
      ...(pred.followed?.kind === 'followed' && pred.followed.learnedPairs
        ? { learnedPairs: pred.followed.learnedPairs }
        : {}),
    };
    steps.push(step);
    options.onStep?.(step);
    accepted.push(pair);
    const due = fineTuneDue(accepted.length, { every: options.every, firstAfter: options.firstAfter ?? 0 });
    if (due && accepted.length < pairs.length) {
      const r = await client.request(
        'fineTune',
        {
          modelDir,
          datasetManifest,
          workspaceRoot: path.dirname(pairs[0].image),
          pairs: accepted.map((p) => ({ image: p.image, mask: p.mask })),
          settings: options.settings,
          classes: options.classes,
        },
        { onProgress: options.onProgress },
      );
      fineTunes.push({
        afterImages: accepted.length,
        version: r.version,
        accepted: r.accepted,
        reason: r.reason,
        seconds: r.seconds,
        trainImages: r.trainImages,
        validationImages: r.validationImages,
      });
    }
  }
  return { every: options.every, modelDir, steps, fineTunes, summary: summarizeSimulation(steps, fineTunes) };
}
