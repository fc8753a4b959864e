import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { checkMaskClasses, classListFromMasks, vocColor, type ClassList } from '../masks/classList';
import { decodeImage } from '../io/imageIO';
import { InputError } from '../masks/inputError';
import { probeWritable } from '../io/atomicWrite';
import { readMask } from '../io/maskIO';
import { checkMaskUsable } from '../masks/maskValueMap';
import type { MaskImage, RgbImage } from '../masks/maskImage';
import { compareMasks, meanMetrics } from '../masks/segmentationMetrics';
import {
  MAX_NEIGHBOURS,
  type FollowedNeighbour,
  type ModelRef,
  type PairRef,
  type ProgressEvent,
  type RequestMap,
} from '../protocol/modelProtocol';
import { resolveBackend } from '../engine/backends';
import { onGpuBackend, type BackendChoice, type BackendReport } from '../protocol/settings';
import { runBench } from './bench';
import { assignSplits, readDatasetManifest, writeDatasetManifest } from '../engine/training/datasetManifest';
import { acceptance } from '../engine/training/acceptance';
import { DEFAULT_FINE_TUNE, fineTune } from '../engine/training/fineTune';
import type { TrainSample } from '../engine/training/validation';
import { releaseFolded } from '../engine/inference/foldedInference';
import { inferenceReport, releaseOnnx } from '../engine/inference/onnxInference';
import { ModelStore, type ModelMeta } from '../engine/store/modelStore';
import { DEFAULT_ENCODER } from '../protocol/encoderKind';
import { networkFor } from '../engine/network/networks';
import { countParameters, estimateFlops, networkStride } from '../engine/network/resUNet';
import {
  DEFAULT_TILES,
  defaultRefine,
  predictImage,
  type PredictHooks,
  type Prediction,
  type TileOptions,
} from '../engine/inference/tiledPredict';
import { pixelHeadProblem } from '../engine/inference/pixelHead';
import { runDoctor } from '../engine/doctor';
import { CancelledError } from '../protocol/errors';
import { suggestFromNeighbours, type ReviewedFrame } from '../engine/inference/sequenceSuggestion';
import { carriedView } from '../engine/inference/carriedView';
import { KeptPredictions } from './keptPredictions';
import type { ClickService } from './clickService';
import type { ClickEdgesWeights } from '../protocol/modelTypes';
import {
  SEQUENCE_HEAD_MAX_PAIRS,
  SequenceHeadCache,
  drawPair,
  type SequenceHeadFitter,
  type SequencePair,
} from '../engine/inference/sequenceHead';

type Params<K extends keyof RequestMap> = RequestMap[K]['params'];
type Result<K extends keyof RequestMap> = RequestMap[K]['result'];

export interface CallContext {
  signal: AbortSignal;
  progress: (event: ProgressEvent) => void;
}

interface Loaded {
  model: tfl.LayersModel;
  meta: ModelMeta;
  mtimeMs: number;
}

export const DEFAULT_CLASSES: ClassList = {
  classes: [
    { index: 0, name: '_background_', color: vocColor(0) },
    { index: 1, name: 'object', color: vocColor(1) },
  ],
};

/** Disposes a model, the folded inference weights and the onnxruntime session cached for it. */
function dropModel(model: tfl.LayersModel): void {
  releaseFolded(model);
  void releaseOnnx(model);
  model.dispose();
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await fs.promises.readFile(file))
    .digest('hex');
}

/** Loads an image and its mask and checks they match; errors name both files. */
export async function loadPair(pair: PairRef): Promise<{ image: RgbImage; mask: MaskImage }> {
  const [image, mask] = await Promise.all([decodeImage(pair.image), readMask(pair.mask)]);
  if (image.width !== mask.width || image.height !== mask.height) {
    throw new InputError(
      pair.mask,
      `the mask is ${mask.width}x${mask.height} but its image ${pair.image} is ${image.width}x${image.height}`,
    );
  }
  checkMaskUsable(mask, pair.mask);
  return { image, mask };
}

/**
 * A pair of reviewed frames (`earlier` carried onto `later`, with `beyond`, the frame before `earlier`, as the
 * second observation when there is one) as the model process keeps its draw: its files as they are now; null
 * when one of them is gone since it was read (the pair is then neither read nor kept).
 */
async function pairKey(earlier: PairRef, later: PairRef, classes: number, beyond?: PairRef): Promise<string | null> {
  const files = [earlier.image, earlier.mask, later.image, later.mask];
  if (beyond) files.push(beyond.image, beyond.mask);
  try {
    const stamps = await Promise.all(files.map(async (f) => (await fs.promises.stat(f)).mtimeMs));
    return JSON.stringify([classes, files, stamps]);
  } catch {
    return null;
  }
}

/** Pairs of reviewed frames whose carried probabilities are kept (a suggestion reads up to MAX_NEIGHBOURS - 1). */
const CARRIED_CACHE_PAIRS = 2 * MAX_NEIGHBOURS;

/** The engine behind the model process: one instance per process, one request at a time. */
export class ModelService {
  private readonly cache = new Map<string, Loaded>();
  /** Pairs of reviewed frames carried for the sequence head (sequenceHistory), by the files and their mtimes. */
  private readonly pairCache = new Map<string, SequencePair>();
  /** Sequence heads by the pairs they were fitted on: the next frame's suggestion tries this one's head. */
  private readonly heads = new SequenceHeadCache();
  /** The last predictions of each model (keptPredictions.ts). */
  private readonly predictions = new KeptPredictions<tfl.LayersModel>();
  private backend: BackendReport | undefined;

  constructor(
    private readonly backendChoice: BackendChoice = 'auto',
    /** Click segmentation in this process: a fine-tune given a click model fits learnt edges through it. */
    private readonly clicks: ClickService | null = null,
  ) {}

  async init(): Promise<BackendReport> {
    this.backend ??= await resolveBackend(this.backendChoice);
    return this.backend;
  }

  private tiles(meta: ModelMeta, tileSize?: number, mirror?: boolean, refine?: boolean): TileOptions {
    // A tile size asked for (--tile) holds for either runtime. Edge refinement is on by default under a
    // pretrained encoder only: in the composite loop it made the from-scratch network's suggestions worse.
    const refineDefault = defaultRefine(meta.network.encoder ?? 'scratch');
    return {
      ...DEFAULT_TILES,
      refine: refine ?? refineDefault,
      ...(tileSize ? { tileSize, onnxTileSize: tileSize } : {}),
      ...(mirror === undefined ? {} : { mirror }),
      ...(meta.pixelHead && pixelHeadProblem(meta.pixelHead, meta.network.numClasses) === null
        ? { pixelHead: meta.pixelHead }
        : {}),
      stride: networkStride(meta.network),
    };
  }

  private async model(ref: ModelRef, classesForNew?: () => Promise<ClassList>): Promise<Loaded & { created: boolean }> {
    await this.init();
    const store = new ModelStore(ref.modelDir);
    const cached = this.cache.get(store.dir);
    if (store.exists()) {
      const mtimeMs = (await fs.promises.stat(store.currentFile)).mtimeMs;
      if (cached && cached.mtimeMs === mtimeMs) return { ...cached, created: false };
      if (cached) dropModel(cached.model);
      this.cache.delete(store.dir);
      await store.cleanStale();
      const { model, meta } = await store.loadCurrent();
      const loaded = { model, meta, mtimeMs };
      this.cache.set(store.dir, loaded);
      return { ...loaded, created: false };
    }
    await store.checkNotOrphaned();
    if (!ref.createIfMissing)
      throw new InputError(
        store.currentFile,
        'no model here; run a fine-tune first (it creates one) or point --model at a model folder',
      );
    await probeWritable(store.dir);
    const classes = ref.classes ?? (classesForNew ? await classesForNew() : DEFAULT_CLASSES);
    const { model, meta } = await store.createInitial(
      networkFor(ref.encoder ?? DEFAULT_ENCODER, classes.classes.length, ref.network),
      classes,
      this.backend?.backend ?? 'unknown',
    );
    const loaded = { model, meta, mtimeMs: (await fs.promises.stat(store.currentFile)).mtimeMs };
    this.cache.set(store.dir, loaded);
    return { ...loaded, created: true };
  }

  private forget(modelDir: string): void {
    const dir = path.resolve(modelDir);
    const cached = this.cache.get(dir);
    if (cached) dropModel(cached.model);
    this.cache.delete(dir);
  }

  async doctor(p: Params<'doctor'>): Promise<Result<'doctor'>> {
    await this.init();
    return runDoctor({ time: p.time });
  }

  /**
   * predictImage, through the predictions kept (keptPredictions.ts) when it keeps the probabilities: those
   * are the predictions a followed suggestion reads, of the frame and of its neighbour. A plain pre-label is
   * neither hashed nor kept.
   */
  private predictKept(
    model: tfl.LayersModel,
    image: RgbImage,
    options: TileOptions,
    hooks: PredictHooks,
  ): Promise<Prediction> {
    const predict = () => predictImage(model, image, options, hooks);
    return hooks.keepProbabilities ? this.predictions.get(model, image, options, true, predict) : predict();
  }

  async info(): Promise<Result<'info'>> {
    return { backend: await this.init(), inference: inferenceReport(), node: process.version, pid: process.pid };
  }

  async describe(p: Params<'describe'>): Promise<Result<'describe'>> {
    const { model, meta, created } = await this.model(p);
    return {
      meta,
      parameters: countParameters(model).total,
      gflopsAt512: estimateFlops(model, 512, 512) / 1e9,
      created,
    };
  }

  async predict(p: Params<'predict'>, ctx: CallContext): Promise<Result<'predict'>> {
    if (p.neighbours?.length && p.classes && !p.createIfMissing && !new ModelStore(p.modelDir).exists())
      return this.carryWithoutModel(p, p.classes, p.neighbours, ctx);
    const { model, meta } = await this.model(p);
    const image = await decodeImage(p.image);
    const t0 = Date.now();
    const neighbours = await this.neighbours(p.neighbours ?? [], image, meta.classes);
    const pred = await this.predictKept(model, image, this.tiles(meta, p.tileSize, p.mirror, p.refine), {
      onTile: (done, total) => {
        if (ctx.signal.aborted) throw new CancelledError();
        if (total > 1) ctx.progress({ type: 'tiles', done, total });
      },
      keepProbabilities: Array.isArray(neighbours) && meta.trained,
    });
    const done = { modelVersion: meta.version, trained: meta.trained };
    if (!Array.isArray(neighbours)) {
      const plain = { width: pred.width, height: pred.height, classMap: pred.classMap, confidence: pred.confidence };
      return { ...plain, ...done, seconds: (Date.now() - t0) / 1000, followed: neighbours ?? undefined };
    }
    if (ctx.signal.aborted) throw new CancelledError();
    // With a track record, the fusion is first tried on the record's nearer frame, which needs the model's
    // prediction there too.
    const near = neighbours[0];
    const recordPair = p.trackRecord ? await this.recordPair(p.trackRecord, image, meta.classes) : undefined;
    const known = recordPair?.[0] ?? (neighbours.length > 1 ? near.frame : undefined);
    const recordModel = known
      ? await this.predictKept(model, known.image, this.tiles(meta, p.tileSize, p.mirror, p.refine), {
          onTile: () => {
            if (ctx.signal.aborted) throw new CancelledError();
          },
          keepProbabilities: meta.trained,
        })
      : undefined;
    const s = await suggestFromNeighbours(
      image,
      neighbours.map((n) => n.frame),
      pred,
      meta.classes.classes.length,
      recordModel,
      undefined,
      recordPair,
      recordPair ? [] : await this.sequenceHistory(neighbours, meta.classes.classes.length, ctx),
      this.fitHeads(ctx),
      await this.keptRecordDraw(neighbours, recordPair, meta.classes.classes.length),
    );
    if (s.recordDraw)
      this.keepPair(
        await pairKey(neighbours[1].ref, near.ref, meta.classes.classes.length, neighbours[2]?.ref),
        s.recordDraw,
      );
    const name = path.basename(near.ref.image);
    // Where following was tried: the record pair's nearer frame when one was given, else the neighbour itself.
    const checked = recordPair && p.trackRecord ? path.basename(p.trackRecord[0].image) : `${name} itself`;
    const pc = (v: number): string => `${(100 * v).toFixed(1)}%`;
    return {
      width: pred.width,
      height: pred.height,
      classMap: s.classMap,
      confidence: s.confidence,
      ...done,
      seconds: (Date.now() - t0) / 1000,
      followed: s.followed
        ? {
            kind: 'followed',
            image: near.ref.image,
            followsCarried: s.followsCarried,
            trackRecordError: s.trackRecordError,
            learnedPairs: s.learnedPairs,
          }
        : {
            kind: 'skipped',
            reason: `following ${name} did not help on ${checked} (${pc(s.check?.fusedError ?? 0)} of its pixels wrong against ${pc(s.check?.modelError ?? 0)} for the model alone): the images may not be frames of one sequence`,
          },
    };
  }

  /**
   * Following a neighbour before any model exists: its mask carried alone (with the track record when a second
   * neighbour or a record pair is given), the classes from the class list.
   */
  private async carryWithoutModel(
    p: Params<'predict'>,
    classes: ClassList,
    refs: PairRef[],
    ctx: CallContext,
  ): Promise<Result<'predict'>> {
    const image = await decodeImage(p.image);
    const t0 = Date.now();
    const neighbours = await this.neighbours(refs, image, classes);
    const done = { modelVersion: 0, trained: false };
    const n = image.width * image.height;
    if (!Array.isArray(neighbours))
      return {
        width: image.width,
        height: image.height,
        classMap: new Uint8Array(n),
        confidence: new Uint8Array(n),
        ...done,
        seconds: (Date.now() - t0) / 1000,
        followed: neighbours ?? undefined,
      };
    const recordPair = p.trackRecord ? await this.recordPair(p.trackRecord, image, classes) : undefined;
    const untrained = { classMap: new Uint8Array(n), confidence: new Uint8Array(n) };
    const s = await suggestFromNeighbours(
      image,
      neighbours.map((x) => x.frame),
      untrained,
      classes.classes.length,
      undefined,
      undefined,
      recordPair,
      recordPair ? [] : await this.sequenceHistory(neighbours, classes.classes.length, ctx),
      this.fitHeads(ctx),
      await this.keptRecordDraw(neighbours, recordPair, classes.classes.length),
    );
    if (s.recordDraw)
      this.keepPair(
        await pairKey(neighbours[1].ref, neighbours[0].ref, classes.classes.length, neighbours[2]?.ref),
        s.recordDraw,
      );
    return {
      width: image.width,
      height: image.height,
      classMap: s.classMap,
      confidence: s.confidence,
      ...done,
      seconds: (Date.now() - t0) / 1000,
      followed: {
        kind: 'followed',
        image: neighbours[0].ref.image,
        followsCarried: s.followsCarried,
        trackRecordError: s.trackRecordError,
        learnedPairs: s.learnedPairs,
      },
    };
  }

  /**
   * The pairs the sequence head learns from beyond the record pair (suggestFromNeighbours draws that one from
   * the carrying it runs anyway): each neighbour after the second carried onto the one before it (neighbours
   * are consecutive reviewed frames, nearest first), with the neighbour after that as a second observation
   * (carriedView). Carrying a pair costs up to four optical flows (kept, opticalFlow.ts) and drawing its
   * pixels a pass of filter features, so each pair is kept, with its draw, while its files are unchanged
   * (keepPair); the record pair's draw, kept after the suggestion, is the next frame's second pair.
   */
  private async sequenceHistory(
    neighbours: { ref: PairRef; frame: ReviewedFrame }[],
    classes: number,
    ctx: CallContext,
  ): Promise<SequencePair[]> {
    const pairs: SequencePair[] = [];
    for (let i = 1; i + 1 < neighbours.length && pairs.length < SEQUENCE_HEAD_MAX_PAIRS; i++) {
      if (ctx.signal.aborted) throw new CancelledError();
      const later = neighbours[i];
      const earlier = neighbours[i + 1];
      const third = neighbours[i + 2];
      const key = await pairKey(earlier.ref, later.ref, classes, third?.ref);
      if (key === null) break;
      let pair = this.pairCache.get(key);
      if (!pair) {
        ctx.progress({
          type: 'prepare',
          message: `carrying ${path.basename(earlier.ref.mask)} onto ${path.basename(later.ref.image)}`,
          done: i - 1,
          total: Math.min(neighbours.length - 2, SEQUENCE_HEAD_MAX_PAIRS),
        });
        const view = await carriedView(later.frame.image, earlier.frame, classes, third?.frame);
        pair = this.keepPair(key, await drawPair(later.frame.image, later.frame.mask, view, classes));
      }
      pairs.push(pair);
    }
    return pairs;
  }

  /**
   * Fits sequence heads through the kept ones (SequenceHeadCache), saying so when one is fitted afresh; a
   * cancelled request stops a fit between its epochs.
   */
  private fitHeads(ctx: CallContext): SequenceHeadFitter {
    const learning = (pairs: SequencePair[]) => () =>
      ctx.progress({ type: 'prepare', message: `learning from ${pairs.length + 1} saved frames`, done: 0, total: 1 });
    const check = (): void => {
      if (ctx.signal.aborted) throw new CancelledError();
    };
    return (pairs, classes) => this.heads.fit(pairs, classes, learning(pairs), check);
  }

  /** Keeps a pair's draw under its key (none: not kept), the oldest let go beyond CARRIED_CACHE_PAIRS. */
  /**
   * The record pair's draw (the frame beyond carried onto the neighbour) as an earlier suggestion kept it, while
   * its four files are unchanged: the same pair, so the heads fitted on it are found again (SequenceHeadCache).
   */
  private async keptRecordDraw(
    neighbours: readonly { ref: PairRef }[],
    recordPair: unknown,
    classes: number,
  ): Promise<SequencePair | undefined> {
    if (recordPair || neighbours.length < 2) return undefined;
    const key = await pairKey(neighbours[1].ref, neighbours[0].ref, classes, neighbours[2]?.ref);
    return key === null ? undefined : this.pairCache.get(key);
  }

  private keepPair(key: string | null, pair: SequencePair): SequencePair {
    if (key === null) return pair;
    this.pairCache.set(key, pair);
    for (const old of this.pairCache.keys()) {
      if (this.pairCache.size <= CARRIED_CACHE_PAIRS) break;
      this.pairCache.delete(old);
    }
    return pair;
  }

  /** The track record's pair when both frames load and match the image; else none (the record is then left out). */
  private async recordPair(
    refs: [PairRef, PairRef],
    image: RgbImage,
    classes: ClassList,
  ): Promise<[ReviewedFrame, ReviewedFrame] | undefined> {
    const loaded = await this.neighbours(refs, image, classes);
    return Array.isArray(loaded) && loaded.length === 2 ? [loaded[0].frame, loaded[1].frame] : undefined;
  }

  /**
   * The reviewed neighbours a prediction can follow (nearest first, at most MAX_NEIGHBOURS, each of the
   * image's size and with classes the model knows), or why none can; null when none was given. A neighbour that
   * cannot be used (unreadable, another size, a class the model lacks) is not followed and ends the run, and
   * without the first the suggestion is the model's: it never fails the prediction.
   */
  private async neighbours(
    refs: PairRef[],
    image: RgbImage,
    classes: ClassList,
  ): Promise<{ ref: PairRef; frame: ReviewedFrame }[] | FollowedNeighbour | null> {
    if (refs.length === 0) return null;
    const out: { ref: PairRef; frame: ReviewedFrame }[] = [];
    for (const ref of refs.slice(0, MAX_NEIGHBOURS)) {
      let problem: string | null = null;
      let frame: ReviewedFrame | null = null;
      try {
        frame = await loadPair(ref);
        checkMaskClasses(frame.mask, classes, ref.mask);
        if (frame.image.width !== image.width || frame.image.height !== image.height)
          problem = `${path.basename(ref.image)} is ${frame.image.width}x${frame.image.height}, this image ${image.width}x${image.height}`;
      } catch (err) {
        if (err instanceof CancelledError) throw err;
        problem = err instanceof Error ? err.message : String(err);
      }
      if (problem !== null || !frame) {
        if (out.length === 0) return { kind: 'skipped', reason: problem ?? 'no neighbour' };
        break;
      }
      out.push({ ref, frame });
    }
    return out;
  }

  async evaluate(p: Params<'evaluate'>, ctx: CallContext): Promise<Result<'evaluate'>> {
    const { model, meta } = await this.model(p);
    const perImage: Result<'evaluate'>['perImage'] = [];
    for (const [i, pair] of p.pairs.entries()) {
      if (ctx.signal.aborted) throw new CancelledError();
      const { image, mask } = await loadPair(pair);
      checkMaskClasses(mask, meta.classes, pair.mask);
      const pred = await predictImage(model, image, this.tiles(meta));
      perImage.push({
        image: pair.image,
        ...compareMasks(mask, { width: pred.width, height: pred.height, data: pred.classMap }),
      });
      ctx.progress({ type: 'prepare', message: path.basename(pair.image), done: i + 1, total: p.pairs.length });
    }
    return { modelVersion: meta.version, perImage, mean: meanMetrics(perImage) };
  }

  async fineTune(p: Params<'fineTune'>, ctx: CallContext): Promise<Result<'fineTune'>> {
    // On a GPU the whole pretrained encoder is unfrozen stage by stage unless asked otherwise; on a CPU it stays frozen.
    const onGpu = this.backend !== undefined && onGpuBackend(this.backend.backend);
    const settings = { ...DEFAULT_FINE_TUNE, ...(onGpu ? { encoderStages: 4 } : {}), ...p.settings };
    const t0 = Date.now();
    // Load and check every pair before touching the model: a bad file fails fast and changes nothing.
    const samples: (TrainSample & { pair: PairRef })[] = [];
    for (const [i, pair] of p.pairs.entries()) {
      if (ctx.signal.aborted) throw new CancelledError();
      const { image, mask } = await loadPair(pair);
      samples.push({ id: path.relative(p.workspaceRoot, pair.image).split(path.sep).join('/'), image, mask, pair });
      ctx.progress({
        type: 'prepare',
        message: `loading ${path.basename(pair.image)}`,
        done: i + 1,
        total: p.pairs.length,
      });
    }
    if (samples.length === 0)
      throw new InputError(p.modelDir, 'no corrected masks to learn from: save at least one mask first');
    const { model, meta, created } = await this.model({ ...p, createIfMissing: p.createIfMissing ?? true }, async () =>
      classListFromMasks(samples.map((s) => s.mask)),
    );
    if (p.classes && !created) checkSameClasses(meta.classes, p.classes, p.modelDir);
    for (const s of samples) checkMaskClasses(s.mask, meta.classes, s.pair.mask);
    const manifest = await readDatasetManifest(p.datasetManifest);
    const splits = assignSplits(
      manifest,
      samples.map((s) => s.id),
    );
    const train = samples.filter((s) => splits.get(s.id) === 'train');
    const validation = samples.filter((s) => splits.get(s.id) === 'validation');
    if (train.length === 0) {
      throw new InputError(
        p.datasetManifest,
        `all ${validation.length} corrected masks belong to images this dataset holds out for validation (they check each fine-tune, so they never train): save corrected masks of more images (a new image trains), or delete this file to split the images again`,
      );
    }
    const store = new ModelStore(p.modelDir);
    // A model folder or manifest that cannot be written is found now, not after the whole training ran.
    await probeWritable(p.modelDir);
    await probeWritable(path.dirname(p.datasetManifest));
    let result;
    try {
      result = await fineTune(model, train, validation, settings, this.tiles(meta), {
        signal: ctx.signal,
        previousCorrection: meta.priorCorrection,
        onProgress: (progress) => ctx.progress({ type: 'fineTune', progress }),
      });
    } catch (err) {
      // The in-memory model is part-trained: drop it; the store on disk was never touched.
      this.forget(p.modelDir);
      throw err;
    }
    const before = result.metricsBefore;
    const after = result.metricsAfter;
    const validated = acceptance(before, after, settings, {
      before: result.perImageBefore,
      after: result.perImageAfter,
    });
    // A version that does not reproduce its own training masks learned nothing, whatever validation says.
    const fit = result.trainingFit;
    const { accepted, reason } = !fit.learnedNothing
      ? validated
      : {
          accepted: settings.force,
          reason: settings.force ? `accepted by --force although it ${fit.reason}` : fit.reason,
        };
    // Learnt edges for click answers, when a click model is given: fitted on the saved masks through that model's
    // answers (they do not depend on the network, so a version without a fit keeps its parent's).
    let clickEdges: { weights: ClickEdgesWeights | null; report: string } | null = null;
    if (p.clickModel && accepted) {
      if (!this.clicks) throw new Error('this model process has no click segmentation');
      const te = Date.now();
      try {
        clickEdges = await this.clicks.fitEdges(p.clickModel, samples, meta.network.numClasses, {
          seed: settings.seed,
          signal: ctx.signal,
          onProgress: (message, done, total) => ctx.progress({ type: 'prepare', message, done, total }),
        });
      } catch (err) {
        if (err instanceof CancelledError || ctx.signal.aborted) {
          this.forget(p.modelDir);
          throw err;
        }
        // A click model that cannot answer leaves the parent's edges: the network's fine-tune still counts.
        clickEdges = {
          weights: meta.clickEdges ?? null,
          report: `not fitted: ${(err as Error).message}${meta.clickEdges ? " (its parent's kept)" : ''}`,
        };
      }
      clickEdges.report += `; ${((Date.now() - te) / 1000).toFixed(1)} s in all`;
    }
    // The splits first: a manifest that cannot be written then stops the fine-tune before the model changes.
    await writeDatasetManifest(p.datasetManifest, manifest);
    const version = await store.nextVersion();
    const newMeta: ModelMeta = {
      ...meta,
      version,
      parent: meta.version,
      createdAt: new Date().toISOString(),
      trained: meta.trained || accepted,
      priorCorrection: result.priorCorrection,
      pixelHead: result.pixelHead ?? undefined,
    };
    if (!newMeta.pixelHead) delete newMeta.pixelHead;
    if (clickEdges) {
      if (clickEdges.weights) newMeta.clickEdges = clickEdges.weights;
      else delete newMeta.clickEdges;
    }
    const clickEdgesReport =
      clickEdges?.report ??
      (p.clickModel ? 'not fitted: the version was not accepted' : 'not fitted: no click model given') +
        (newMeta.clickEdges ? " (its parent's kept)" : '');
    const hashed = async (list: typeof samples): Promise<{ image: string; mask: string; sha256: string }[]> =>
      Promise.all(
        list.map(async (s) => ({
          image: s.id,
          mask: path.relative(p.workspaceRoot, s.pair.mask).split(path.sep).join('/'),
          sha256: createHash('sha256')
            .update(await sha256(s.pair.image))
            .update(await sha256(s.pair.mask))
            .digest('hex'),
        })),
      );
    const context = result.context
      ? `; context head fitted on ${result.context.cells} cells of whole images in ${result.context.seconds.toFixed(1)} s (encoder passes on ${result.context.features}, regression on ${result.context.runtime})`
      : '';
    const augmentation = `${result.cropSize}x${result.cropSize} crops; ${result.hueJitter.reason}${context}`;
    const summary = (m: typeof before): Record<string, number> | null => (m ? { ...m } : null);
    await store.writeVersion(model, newMeta, {
      version,
      parent: meta.version,
      createdAt: newMeta.createdAt,
      backend: this.backend?.backend ?? 'unknown',
      accepted,
      reason,
      settings: { ...settings, hueJitter: result.hueJitter.value, cropSize: result.cropSize },
      augmentation,
      ...(result.context ? { contextHead: { ...result.context } } : {}),
      trainingFit: { ...fit },
      pixelHead: result.pixelHeadReport,
      clickEdges: clickEdgesReport,
      threads: result.threads.reason,
      timing: result.timing,
      train: await hashed(train),
      validation: await hashed(validation),
      metricsBefore: summary(before),
      metricsAfter: summary(after),
      history: result.history.map((h) => ({ epoch: h.epoch, loss: h.loss, val: h.val ? { ...h.val } : undefined })),
      seconds: result.seconds,
    });
    if (accepted) await store.setCurrent(version);
    // Reload from disk next time (the in-memory model is the new version when accepted, else stale).
    this.forget(p.modelDir);
    return {
      version,
      parent: meta.version,
      accepted,
      reason,
      current: accepted ? version : meta.version,
      metricsBefore: before,
      metricsAfter: after,
      trainImages: train.length,
      validationImages: validation.length,
      seconds: (Date.now() - t0) / 1000,
      steps: result.steps,
      epochs: result.history.length,
      augmentation,
      trainingFit: { ...fit },
      pixelHead: result.pixelHeadReport,
      clickEdges: clickEdgesReport,
      threads: result.threads.reason,
      timing: result.timing,
    };
  }

  async versions(p: Params<'versions'>): Promise<Result<'versions'>> {
    const store = new ModelStore(p.modelDir);
    // One damaged manifest or model.json must not hide the others: each is listed as unreadable, with why.
    const versions = [];
    const unreadable: { version: number | null; reason: string }[] = [];
    for (const v of await store.listVersions()) {
      try {
        versions.push(await store.readVersionManifest(v));
      } catch (err) {
        unreadable.push({ version: v, reason: (err as Error).message });
      }
    }
    let current: number | null = null;
    try {
      if (store.exists()) current = (await store.currentMeta()).version;
      else await store.checkNotOrphaned();
    } catch (err) {
      unreadable.push({ version: null, reason: (err as Error).message });
    }
    return { current, versions, unreadable };
  }

  async rollback(p: Params<'rollback'>): Promise<Result<'rollback'>> {
    await this.init();
    const store = new ModelStore(p.modelDir);
    const meta = await store.rollback(p.version);
    this.forget(p.modelDir);
    return { current: meta.version };
  }

  async bench(p: Params<'bench'>, ctx: CallContext): Promise<Result<'bench'>> {
    const backend = await this.init();
    return runBench(backend.backend, p, ctx.signal);
  }
}

/**
 * A class list given for an existing model must name the model's classes at the same indices: a model cannot
 * take new or renamed classes in place, and ignoring the list would train names onto the wrong indices.
 */
function checkSameClasses(model: ClassList, given: ClassList, modelDir: string): void {
  const names = (l: ClassList): string =>
    [...l.classes]
      .sort((a, b) => a.index - b.index)
      .map((c) => `${c.index}=${c.name}`)
      .join(', ');
  if (names(model) !== names(given)) {
    throw new InputError(
      modelDir,
      `this model's classes are ${names(model)}, but the class list given is ${names(given)}: use the model's class list, or start a new model in another folder (--model) for the new classes`,
    );
  }
}
