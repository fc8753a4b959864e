// Click segmentation in the model process: SAM-family pairs loaded once (reloaded when a file changes), the
// last images decoded kept with their keys, embeddings through the engine's cache. After the first answer on an
// object, its next clicks are answered on a crop around it (zoom-in, zoomCrop.ts), whose embedding is computed
// while the person looks at the first answer. The extension host never runs a model; it sends clicks and gets
// candidate masks back, at the image's size either way.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeImage } from '../io/imageIO';
import { InputError } from '../masks/inputError';
import type { RgbImage } from '../masks/maskImage';
import { imageKey, SamModel } from '../engine/click/samModel';
import type { ClickModelFiles, ClickPromptParams, ClickTarget, RequestMap } from '../protocol/modelProtocol';
import { CancelledError } from '../protocol/errors';
import type { CallContext } from './modelService';
import { inputScale, type ClickCandidate, type ClickPrompt } from '../engine/click/samGeometry';
import type { Box } from '../masks/maskDiff';
import { HONOUR, honourClicks } from '../engine/click/honourClicks';
import { edgesProblem, redrawEdges, type EdgeHead } from '../engine/click/clickEdges';
import { fitClickEdges, type EdgeFitImage, type EdgeFitResult } from '../engine/click/clickEdgesFit';
import { suggestionAnswers } from '../engine/click/clickProtocol';
import { ModelStore } from '../engine/store/modelStore';
import type { ClickEdgesWeights } from '../protocol/modelTypes';
import {
  cropFlat,
  cropRgb,
  insideBox,
  moveLogits,
  pasteFlat,
  sameBox,
  zoomAround,
  zoomCropFor,
} from '../engine/click/zoomCrop';

/** Answers whose low-resolution logits are kept for a next prompt (a few editors' last clicks). */
const ANSWERS_KEPT = 8;

/** Decoded images kept, so each click does not decode its image again. */
const IMAGES_KEPT = 2;

/** The kept answers' candidate masks at most, in bytes (older answers then keep their logits only). */
const MASK_BYTES_KEPT = 64 << 20;

interface KeptAnswer {
  answer: number;
  image: string;
  /** The crop it was answered on (zoom-in), or null: the whole image. */
  crop: Box | null;
  /** Each candidate's low-resolution logits (in the crop's frame when there is one). */
  lowRes: (Float32Array | null)[];
  /** Each candidate at the image's size, or null once past MASK_BYTES_KEPT. */
  masks: Uint8Array[] | null;
  /** The first candidate is the suggested region (ClickPromptParams.suggested): continuing from it refines it. */
  fromSuggestion: boolean;
}

function cropKey(imageKey: string, box: Box): string {
  return `${imageKey}@${box.x0},${box.y0},${box.x1},${box.y1}`;
}

/** The box clipped to a crop, in the crop's coordinates. */
function clipBox(box: Box, crop: Box): Box {
  const clip = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
  return {
    x0: clip(box.x0, crop.x0, crop.x1) - crop.x0,
    y0: clip(box.y0, crop.y0, crop.y1) - crop.y0,
    x1: clip(box.x1, crop.x0, crop.x1) - crop.x0,
    y1: clip(box.y1, crop.y0, crop.y1) - crop.y0,
  };
}

async function stamp(file: string): Promise<string> {
  const st = await fs.promises.stat(file);
  return `${st.size}:${st.mtimeMs}`;
}

/**
 * What names a click model for the learnt edges fitted on its answers: its files' names and sizes (the same
 * pair copied elsewhere still matches; another export of another size does not).
 */
export async function clickModelId(files: ClickModelFiles): Promise<string> {
  const part = async (f: string): Promise<string> => `${path.basename(f)}:${(await fs.promises.stat(f)).size}`;
  return `${await part(files.encoder)}|${await part(files.decoder)}`;
}

export class ClickService {
  private loaded: { key: string; model: Promise<SamModel> } | null = null;
  /** Decoded images with the key of their pixels (hashed once, not at every click). */
  private readonly images: { file: string; stamp: string; image: RgbImage; key: string }[] = [];
  /** The last answers, for a next prompt's `continueFrom`. */
  private readonly answers: KeptAnswer[] = [];
  private answerCount = 0;
  /** The learnt edges of the last model folders asked for, by folder, with the stamp of its model.json. */
  private readonly edges = new Map<string, { stamp: string; weights: ClickEdgesWeights | null }>();

  private async model(files: ClickModelFiles): Promise<SamModel> {
    const stamps = await Promise.all(
      [files.encoder, files.decoder].map((f) =>
        stamp(f).catch((err: unknown) => {
          throw new InputError(
            f,
            `cannot read this click-segmentation model file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); set it up again`,
          );
        }),
      ),
    );
    const key = `${files.encoder}|${files.decoder}|${stamps.join('|')}`;
    if (this.loaded?.key === key) return this.loaded.model;
    const previous = this.loaded;
    const model = SamModel.load(files).catch((err: unknown) => {
      this.loaded = null;
      throw err;
    });
    this.loaded = { key, model };
    if (previous) void previous.model.then((m) => m.release()).catch(() => undefined);
    return model;
  }

  private async image(file: string): Promise<{ image: RgbImage; key: string }> {
    const s = await stamp(file);
    const hit = this.images.find((i) => i.file === file && i.stamp === s);
    if (hit) return hit;
    const image = await decodeImage(file);
    const entry = { file, stamp: s, image, key: imageKey(image) };
    this.images.unshift(entry);
    this.images.length = Math.min(this.images.length, IMAGES_KEPT);
    return entry;
  }

  private async embedded(p: ClickTarget, ctx: CallContext) {
    const t0 = Date.now();
    const model = await this.model(p.model);
    const { image, key } = await this.image(p.image);
    if (ctx.signal.aborted) throw new CancelledError();
    const { embedding, source } = await model.embed(image, p.cacheDir, key);
    return { model, image, key, embedding, source, t0 };
  }

  async check(p: RequestMap['clickCheck']['params']): Promise<RequestMap['clickCheck']['result']> {
    const model = await this.model(p.model);
    return { layout: model.layout.kind, inputSize: model.layout.inputSize };
  }

  async prepare(p: ClickTarget, ctx: CallContext): Promise<RequestMap['clickPrepare']['result']> {
    const { model, image, source, t0 } = await this.embedded(p, ctx);
    return {
      layout: model.layout.kind,
      inputSize: model.layout.inputSize,
      width: image.width,
      height: image.height,
      embedding: source,
      seconds: (Date.now() - t0) / 1000,
    };
  }

  async segment(
    p: RequestMap['clickSegment']['params'],
    ctx: CallContext,
  ): Promise<RequestMap['clickSegment']['result']> {
    const loaded = await this.embedded(p, ctx);
    const edges = p.edges ? await this.edgesFor(p.edges.modelDir, p.model, p.edges.classIndex) : null;
    return this.answer(loaded, p.image, p.prompt, ctx, edges);
  }

  /**
   * Answers a prompt on an embedded image (`imageId` names it for a later `continueFrom`), with its edges
   * redrawn by `edges` when given.
   */
  private async answer(
    loaded: Awaited<ReturnType<ClickService['embedded']>>,
    imageId: string,
    prompt: ClickPromptParams,
    ctx: CallContext,
    edges: (EdgeHead & { classes: number; classIndex: number }) | null,
  ): Promise<RequestMap['clickSegment']['result']> {
    const { model, image, key, embedding, source, t0 } = loaded;
    const { width, height } = image;
    const { region: given, suggested, continueFrom, zoom, honour, ...rest } = prompt;
    for (const [what, r] of [
      ['the region to refine', given],
      ['the suggested region', suggested],
    ] as const)
      if (r && r.length !== width * height)
        throw new InputError(imageId, `${what} has ${r.length} pixels; the image has ${width}x${height}`);
    for (const pt of rest.points)
      if (!(pt.x >= 0 && pt.x <= width && pt.y >= 0 && pt.y <= height))
        throw new InputError(imageId, `the click at ${pt.x},${pt.y} is outside the image (${width}x${height})`);
    if (rest.points.length === 0 && !rest.box) throw new InputError(imageId, 'a click prompt needs a point or a box');
    const earlier = continueFrom
      ? this.answers.find((a) => a.answer === continueFrom.answer && a.image === imageId)
      : undefined;
    const chosen = continueFrom?.candidate ?? 0;
    const earlierLowRes = earlier?.lowRes[chosen] ?? null;
    const earlierMask = earlier?.masks?.[chosen] ?? null;
    // A suggested region that answered the click before is refined as a region given is.
    const region = given ?? (earlier?.fromSuggestion && chosen === 0 && earlierMask ? earlierMask : undefined);
    // What the answer refines: the region given, else the answer continued from (at the image's size).
    const base = region ?? earlierMask;
    // A region given is refined on the whole image (on a crop it went wrong more often on EM cells); the next
    // click, continuing from that answer, zooms on its crop, encoded meanwhile.
    const crop = zoom === false || region ? null : zoomCropFor(width, height, rest, base, earlier?.crop ?? null);
    // The answer continued from, in the frame this one is made on: its own logits, moved when its frame was
    // another (the whole image or another crop); else the region or earlier mask as the mask prompt.
    const L = model.layout;
    const frame = (b: Box | null): Box => b ?? { x0: 0, y0: 0, x1: width, y1: height };
    const continued = (to: Box | null): Pick<ClickPrompt, 'previous' | 'region'> => {
      if (!region && earlier && earlierLowRes)
        return {
          previous: sameBox(earlier.crop, to)
            ? earlierLowRes
            : moveLogits(
                earlierLowRes,
                L.maskInputSize,
                (w, h) => inputScale(L, w, h),
                L.inputSize,
                frame(earlier.crop),
                frame(to),
              ),
        };
      if (!base) return {};
      const f = frame(to);
      return {
        region: { width: f.x1 - f.x0, height: f.y1 - f.y0, data: to ? cropFlat(base, width, height, to) : base },
      };
    };
    // The decoder's candidates are drawn at the edge the clicks choose unless honouring is off.
    const decoderHonour = honour === false ? { honour } : {};
    let found: (ClickCandidate & { lowRes: Float32Array | null })[];
    let zoomed: RequestMap['clickSegment']['result']['zoom'] = null;
    if (crop) {
      const at = await model.embed(cropRgb(image, crop), undefined, cropKey(key, crop));
      if (ctx.signal.aborted) throw new CancelledError();
      zoomed = { box: crop, embedding: at.source };
      const local = await model.segment(at.embedding, {
        points: rest.points
          .filter((pt) => insideBox(crop, pt, 0, width, height))
          .map((pt) => ({ x: pt.x - crop.x0, y: pt.y - crop.y0, positive: pt.positive })),
        ...(rest.box ? { box: clipBox(rest.box, crop) } : {}),
        ...continued(crop),
        ...decoderHonour,
      });
      found = local.map((c) => ({ ...c, mask: pasteFlat(c.mask, crop, width, height) }));
    } else {
      found = await model.segment(embedding, { ...rest, ...continued(null), ...decoderHonour });
      // The crop the next click will likely be answered on, encoded while the person looks at this answer.
      const next = zoom === false || !found[0] ? null : zoomAround(width, height, found[0].mask, rest.points, rest.box);
      if (next) void model.embed(cropRgb(image, next), undefined, cropKey(key, next)).catch(() => undefined);
    }
    // The suggested region answers a first click where the decoder's answer covers at least half its size.
    const first =
      !given && !earlier && !rest.box && rest.points.length === 1 && rest.points[0].positive && suggested !== undefined;
    const regionArea = first ? countInside(suggested) : 0;
    const fromSuggestion = first && found[0] !== undefined && suggestionAnswers(regionArea, found[0].area);
    if (fromSuggestion)
      found = [
        { mask: suggested, score: found[0]?.score ?? 1, area: regionArea, index: -1, threshold: 0, lowRes: null },
        ...found,
      ];
    const answer = ++this.answerCount;
    this.answers.unshift({
      answer,
      image: imageId,
      crop,
      lowRes: found.map((c) => c.lowRes),
      masks: found.map((c) => c.mask),
      fromSuggestion,
    });
    this.answers.length = Math.min(this.answers.length, ANSWERS_KEPT);
    // Older answers drop their masks past the budget (the newest keeps its own, however large): continuing from
    // them then zooms no more.
    let bytes = 0;
    for (const [i, a] of this.answers.entries()) {
      bytes += a.masks?.reduce((n, m) => n + m.length, 0) ?? 0;
      if (i > 0 && bytes > MASK_BYTES_KEPT) a.masks = null;
    }
    // What comes back honours every click: the decoder's edge was moved as far as the clicks say (edgeThreshold);
    // the close colours around a click still contradicted go with it (kept answers' logits stay the decoder's
    // own, for the next prompt).
    // Learnt edges (when asked, and fitted for this class) redraw each candidate's edge after that.
    const candidates = found.map((c, i) => {
      // The suggested region is the model's own: neither honoured nor redrawn (the click lies inside it).
      if (fromSuggestion && i === 0) return { mask: c.mask, score: c.score, area: c.area };
      const honoured = honour === false ? c.mask : honourClicks(c.mask, image, rest.points, HONOUR);
      const mask = edges ? redrawEdges(honoured, image, edges.classIndex, edges, rest.points) : honoured;
      let area = c.area;
      if (mask !== c.mask) {
        area = 0;
        for (let i = 0; i < mask.length; i++) area += mask[i];
      }
      return { mask, score: c.score, area };
    });
    return {
      width,
      height,
      candidates,
      answer,
      learntEdges: edges !== null,
      fromSuggestion,
      zoom: zoomed,
      embedding: source,
      seconds: (Date.now() - t0) / 1000,
    };
  }

  /**
   * The learnt edges of a maskloop model's current version for a class, when it has them for this click model
   * and redraws that class; else null (answers as the decoder and the honoured clicks give them).
   */
  private async edgesFor(
    modelDir: string,
    files: ClickModelFiles,
    classIndex: number,
  ): Promise<(EdgeHead & { classes: number; classIndex: number }) | null> {
    const store = new ModelStore(modelDir);
    let current: string;
    try {
      current = await stamp(store.currentFile);
    } catch {
      return null; // No model yet: nothing learnt.
    }
    let hit = this.edges.get(modelDir);
    if (hit?.stamp !== current) {
      // A model.json that cannot be read leaves the answers as they are: the clicks still work.
      const weights = await store.currentMeta().then(
        (meta) => meta.clickEdges ?? null,
        () => null,
      );
      hit = { stamp: current, weights };
      this.edges.set(modelDir, hit);
    }
    const w = hit.weights;
    if (!w || !w.redrawn.includes(classIndex) || edgesProblem(w) !== null) return null;
    if (w.clickModel !== (await clickModelId(files))) return null;
    return { ...w, classIndex };
  }

  /**
   * Fits learnt edges on saved images: the click protocol is played on their objects through this service's own
   * answers (as the editor gets them, without learnt edges), in memory only.
   */
  async fitEdges(
    files: ClickModelFiles,
    images: readonly EdgeFitImage[],
    classes: number,
    o: { seed: number; signal: AbortSignal; onProgress?: (message: string, done: number, total: number) => void },
  ): Promise<EdgeFitResult> {
    const model = await this.model(files);
    const keys = new Map<number, string>();
    const ctx: CallContext = { signal: o.signal, progress: () => undefined };
    const answerer = async (index: number, prompt: { points: ClickPromptParams['points']; continueFrom?: number }) => {
      const image = images[index].image;
      let key = keys.get(index);
      if (!key) keys.set(index, (key = imageKey(image)));
      const t0 = Date.now();
      const { embedding, source } = await model.embed(image, undefined, key);
      const r = await this.answer(
        { model, image, key, embedding, source, t0 },
        `fit:${key}`,
        {
          points: prompt.points,
          ...(prompt.continueFrom !== undefined ? { continueFrom: { answer: prompt.continueFrom, candidate: 0 } } : {}),
        },
        ctx,
        null,
      );
      return { mask: r.candidates[0]?.mask ?? new Uint8Array(image.width * image.height), answer: r.answer };
    };
    return fitClickEdges(images, classes, answerer, {
      clickModel: await clickModelId(files),
      seed: o.seed,
      check: () => {
        if (o.signal.aborted) throw new CancelledError();
      },
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    });
  }

  async release(): Promise<void> {
    const loaded = this.loaded;
    this.loaded = null;
    if (loaded) await (await loaded.model.catch(() => null))?.release();
  }
}

function countInside(mask: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) n++;
  return n;
}
