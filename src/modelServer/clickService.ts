// Click segmentation in the model process: SAM-family pairs loaded once (reloaded when a file changes), the
// last images decoded kept with their keys, embeddings through the engine's cache. The extension host never
// runs a model; it sends clicks and gets candidate masks back.
import * as fs from 'node:fs';
import { decodeImage } from '../io/imageIO';
import { InputError } from '../masks/inputError';
import type { RgbImage } from '../masks/maskImage';
import { imageKey, SamModel } from '../engine/click/samModel';
import type { ClickModelFiles, ClickTarget, RequestMap } from '../protocol/modelProtocol';
import { CancelledError } from '../protocol/errors';
import type { CallContext } from './modelService';

/** Answers whose low-resolution logits are kept for a next prompt (a few editors' last clicks). */
const ANSWERS_KEPT = 8;

/** Decoded images kept, so each click does not decode its image again. */
const IMAGES_KEPT = 2;

async function stamp(file: string): Promise<string> {
  const st = await fs.promises.stat(file);
  return `${st.size}:${st.mtimeMs}`;
}

export class ClickService {
  private loaded: { key: string; model: Promise<SamModel> } | null = null;
  /** Decoded images with the key of their pixels (hashed once, not at every click). */
  private readonly images: { file: string; stamp: string; image: RgbImage; key: string }[] = [];
  /** The last answers' candidates' low-resolution logits, for a next prompt's `continueFrom`. */
  private readonly answers: { answer: number; image: string; lowRes: (Float32Array | null)[] }[] = [];
  private answerCount = 0;

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
    return { model, image, embedding, source, t0 };
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
    const { model, image, embedding, source, t0 } = await this.embedded(p, ctx);
    const { width, height } = image;
    const { region, continueFrom, ...rest } = p.prompt;
    if (region && region.length !== width * height)
      throw new InputError(
        p.image,
        `the region to refine has ${region.length} pixels; the image has ${width}x${height}`,
      );
    for (const pt of rest.points)
      if (!(pt.x >= 0 && pt.x <= width && pt.y >= 0 && pt.y <= height))
        throw new InputError(p.image, `the click at ${pt.x},${pt.y} is outside the image (${width}x${height})`);
    if (rest.points.length === 0 && !rest.box) throw new InputError(p.image, 'a click prompt needs a point or a box');
    const earlier = continueFrom
      ? this.answers.find((a) => a.answer === continueFrom.answer && a.image === p.image)?.lowRes[
          continueFrom.candidate
        ]
      : undefined;
    const found = await model.segment(embedding, {
      ...rest,
      ...(region ? { region: { width, height, data: region } } : {}),
      ...(earlier ? { previous: earlier } : {}),
    });
    const answer = ++this.answerCount;
    this.answers.unshift({ answer, image: p.image, lowRes: found.map((c) => c.lowRes) });
    this.answers.length = Math.min(this.answers.length, ANSWERS_KEPT);
    const candidates = found.map((c) => ({ mask: c.mask, score: c.score, area: c.area }));
    return { width, height, candidates, answer, embedding: source, seconds: (Date.now() - t0) / 1000 };
  }

  async release(): Promise<void> {
    const loaded = this.loaded;
    this.loaded = null;
    if (loaded) await (await loaded.model.catch(() => null))?.release();
  }
}
