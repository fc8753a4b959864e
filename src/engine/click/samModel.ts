// A SAM-family encoder/decoder pair on onnxruntime-node, in the model process: the encoder runs once per image
// and its embedding is kept (the last few in memory, every one on disk when a cache folder is given, keyed by
// the image's pixels and the encoder's bytes), the decoder once per prompt.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { writeFileAtomic } from '../../io/atomicWrite';
import type { RgbImage } from '../../masks/maskImage';
import { InputError } from '../../masks/inputError';
import { loadOrt, ortLoadError, sessionOptions } from '../inference/onnxInference';
import {
  candidateMasks,
  encoderInput,
  maskPromptArray,
  promptArrays,
  type ClickCandidate,
  type ClickPrompt,
} from './samGeometry';
import { samLayout, type GraphIo, type SamLayout } from './samLayout';

export interface SamFiles {
  encoder: string;
  decoder: string;
}

/** An image's embedding: the encoder's outputs by name. */
export interface Embedding {
  key: string;
  width: number;
  height: number;
  tensors: Record<string, { data: Float32Array; dims: number[] }>;
}

/** Embeddings kept in memory per model: a few images, and the zoom-in crops of the objects clicked on them. */
const MEMORY_EMBEDDINGS = 6;

/** The disk cache's size at most: a SAM embedding is 4 MiB (SAM 2's 16 MiB), so about 250 images. */
export const EMBEDDING_CACHE_BYTES = 1 << 30;

/**
 * Deletes the least recently used embedding files of a cache folder until the rest fit in `maxBytes`. Only
 * files named as embeddings are touched.
 */
export async function pruneEmbeddingCache(dir: string, maxBytes: number): Promise<number> {
  const names = (await fs.promises.readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.embedding'));
  const files = await Promise.all(
    names.map(async (n) => {
      const st = await fs.promises.stat(path.join(dir, n)).catch(() => null);
      return { file: path.join(dir, n), size: st?.size ?? 0, used: st?.mtimeMs ?? 0 };
    }),
  );
  files.sort((a, b) => b.used - a.used);
  let total = 0;
  let removed = 0;
  for (const f of files) {
    total += f.size;
    if (total > maxBytes) {
      await fs.promises.rm(f.file, { force: true });
      removed++;
    }
  }
  return removed;
}

function graphIo(session: Ort.InferenceSession): GraphIo {
  const values = (meta: readonly Ort.InferenceSession.ValueMetadata[]) =>
    meta.map((m) => ({ name: m.name, shape: m.isTensor ? [...m.shape] : [] }));
  return { inputs: values(session.inputMetadata), outputs: values(session.outputMetadata) };
}

async function fileHash(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The key of an image's pixels. */
export function imageKey(image: RgbImage): string {
  return createHash('sha256').update(`${image.width}x${image.height}:`).update(image.data).digest('hex');
}

export class SamModel {
  private readonly memory: Embedding[] = [];
  private readonly pending = new Map<string, Promise<{ embedding: Embedding; source: 'disk' | 'computed' }>>();

  private constructor(
    readonly files: SamFiles,
    readonly layout: SamLayout,
    /** SHA-256 of the encoder file: embeddings on disk are keyed by it. */
    readonly encoderHash: string,
    private readonly encoder: Ort.InferenceSession,
    private readonly decoder: Ort.InferenceSession,
    private readonly ort: typeof Ort,
  ) {}

  /** Loads a pair; throws a message naming the files when either cannot be read or the layout is not supported. */
  static async load(files: SamFiles): Promise<SamModel> {
    const o = loadOrt();
    if (!o) throw new Error(`click segmentation needs onnxruntime-node, which cannot load here: ${ortLoadError()}`);
    const options = sessionOptions();
    const open = async (file: string, role: string): Promise<Ort.InferenceSession> => {
      try {
        return await o.InferenceSession.create(file, options);
      } catch (err) {
        throw new InputError(
          file,
          `not a ${role} onnxruntime can load (${(err as Error).message.split('\n')[0]}); choose the model's files again`,
        );
      }
    };
    const encoder = await open(files.encoder, 'click-segmentation encoder');
    let decoder: Ort.InferenceSession;
    try {
      decoder = await open(files.decoder, 'click-segmentation decoder');
    } catch (err) {
      await encoder.release();
      throw err;
    }
    const layout = samLayout(graphIo(encoder), graphIo(decoder));
    if ('error' in layout) {
      await Promise.all([encoder.release(), decoder.release()]);
      throw new InputError(`${files.encoder} with ${path.basename(files.decoder)}`, layout.error);
    }
    return new SamModel(files, layout, await fileHash(files.encoder), encoder, decoder, o);
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.release(), this.decoder.release()]);
  }

  private cacheFile(cacheDir: string, key: string): string {
    return path.join(cacheDir, `${this.encoderHash.slice(0, 16)}-${key.slice(0, 32)}.embedding`);
  }

  /**
   * The image's embedding: from memory, else from the cache folder, else computed (and then written there).
   * `source` says which.
   */
  async embed(
    image: RgbImage,
    cacheDir?: string,
    key = imageKey(image),
  ): Promise<{ embedding: Embedding; source: 'memory' | 'disk' | 'computed' }> {
    const at = this.memory.findIndex((e) => e.key === key);
    if (at >= 0) {
      // The most recently used first: the last MEMORY_EMBEDDINGS images (and crops) a person worked on stay.
      const [hit] = this.memory.splice(at, 1);
      this.memory.unshift(hit);
      return { embedding: hit, source: 'memory' };
    }
    // One computation per key: a crop encoded ahead (zoom-in) and then asked for waits for that one.
    const running = this.pending.get(key);
    if (running) return running;
    const job = this.load(image, cacheDir, key).finally(() => this.pending.delete(key));
    this.pending.set(key, job);
    return job;
  }

  private async load(
    image: RgbImage,
    cacheDir: string | undefined,
    key: string,
  ): Promise<{ embedding: Embedding; source: 'disk' | 'computed' }> {
    let embedding = cacheDir ? await readEmbedding(this.cacheFile(cacheDir, key), key, image) : null;
    const source = embedding ? 'disk' : 'computed';
    if (!embedding) {
      const input = encoderInput(image, this.layout);
      const out = await this.encoder.run({
        [this.layout.encoderInput]: new this.ort.Tensor('float32', input.data, input.dims),
      });
      const tensors: Embedding['tensors'] = {};
      for (const name of this.layout.embeddings) {
        const t = out[name];
        tensors[name] = { data: Float32Array.from(t.data as Float32Array), dims: [...t.dims] };
      }
      for (const t of Object.values(out)) t.dispose();
      embedding = { key, width: image.width, height: image.height, tensors };
      if (cacheDir) {
        await writeEmbedding(this.cacheFile(cacheDir, key), embedding);
        await pruneEmbeddingCache(cacheDir, EMBEDDING_CACHE_BYTES);
      }
    } else if (cacheDir) {
      // A file read is a file used: the cache drops the least recently used first.
      const now = new Date();
      await fs.promises.utimes(this.cacheFile(cacheDir, key), now, now).catch(() => undefined);
    }
    this.memory.unshift(embedding);
    this.memory.length = Math.min(this.memory.length, MEMORY_EMBEDDINGS);
    return { embedding, source };
  }

  /**
   * The candidates for a prompt on an embedded image, best predicted IoU first, each with its low-resolution
   * logits when the decoder gives them at mask_input's size (for the next click's `previous`).
   */
  async segment(
    embedding: Embedding,
    prompt: ClickPrompt,
  ): Promise<(ClickCandidate & { lowRes: Float32Array | null })[]> {
    const { width, height } = embedding;
    if (prompt.points.length === 0 && !prompt.box) throw new Error('a click prompt needs a point or a box');
    const feeds: Record<string, Ort.Tensor> = {};
    for (const [input, output] of Object.entries(this.layout.feeds)) {
      const t = embedding.tensors[output];
      feeds[input] = new this.ort.Tensor('float32', t.data, t.dims);
    }
    const p = promptArrays(prompt, this.layout, width, height);
    const M = this.layout.maskInputSize;
    for (const input of this.layout.promptInputs) {
      switch (input) {
        case 'point_coords':
          feeds[input] = new this.ort.Tensor('float32', p.coords, [1, p.count, 2]);
          break;
        case 'point_labels':
          feeds[input] = new this.ort.Tensor('float32', p.labels, [1, p.count]);
          break;
        case 'mask_input':
          feeds[input] = new this.ort.Tensor(
            'float32',
            prompt.region
              ? maskPromptArray(prompt.region, this.layout)
              : prompt.previous?.length === M * M
                ? prompt.previous
                : new Float32Array(M * M),
            [1, 1, M, M],
          );
          break;
        case 'has_mask_input':
          feeds[input] = new this.ort.Tensor(
            'float32',
            Float32Array.of(prompt.region || prompt.previous?.length === M * M ? 1 : 0),
            [1],
          );
          break;
        case 'orig_im_size':
          feeds[input] = new this.ort.Tensor('float32', Float32Array.of(height, width), [2]);
          break;
        default: {
          const never: never = input;
          throw new Error(`unknown prompt input ${String(never)}`);
        }
      }
    }
    const out = await this.decoder.run(feeds);
    try {
      // Low-resolution logits where the decoder gives them: its full-size masks follow the export's own
      // resize, which some SAM exports fixed to one aspect ratio.
      const logits = out[this.layout.lowResMasks ?? this.layout.masks];
      const scores = out[this.layout.scores];
      const candidates = candidateMasks(
        logits.data as Float32Array,
        logits.dims,
        scores.data as Float32Array,
        this.layout,
        width,
        height,
        // Every click honoured: first by the decoder's own edge, moved out or in as far as the clicks say.
        prompt.honour === false ? undefined : prompt.points,
      );
      // Each candidate's low-resolution logits, kept for the next click's mask_input (a copy: the tensor goes).
      const [, , h, w] = logits.dims;
      const M = this.layout.maskInputSize;
      return candidates.map((c) => ({
        ...c,
        lowRes:
          h === M && w === M
            ? Float32Array.from((logits.data as Float32Array).subarray(c.index * M * M, (c.index + 1) * M * M))
            : null,
      }));
    } finally {
      for (const t of Object.values(out)) t.dispose();
    }
  }
}

/** On disk: a 4-byte header length, a JSON header (key, size, each tensor's name and dims), the float data. */
async function writeEmbedding(file: string, e: Embedding): Promise<void> {
  const names = Object.keys(e.tensors).sort();
  const header = Buffer.from(
    JSON.stringify({
      key: e.key,
      width: e.width,
      height: e.height,
      tensors: names.map((n) => ({ name: n, dims: e.tensors[n].dims })),
    }),
  );
  const parts = [
    Buffer.alloc(4),
    header,
    ...names.map((n) =>
      Buffer.from(e.tensors[n].data.buffer, e.tensors[n].data.byteOffset, e.tensors[n].data.byteLength),
    ),
  ];
  parts[0].writeUInt32LE(header.length, 0);
  await writeFileAtomic(file, Buffer.concat(parts));
}

/** A cached embedding, or null when it is absent, another image's, or unreadable (it is then computed again). */
async function readEmbedding(file: string, key: string, image: RgbImage): Promise<Embedding | null> {
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch {
    return null;
  }
  try {
    const length = bytes.readUInt32LE(0);
    const header = JSON.parse(bytes.subarray(4, 4 + length).toString()) as {
      key: string;
      width: number;
      height: number;
      tensors: { name: string; dims: number[] }[];
    };
    if (header.key !== key || header.width !== image.width || header.height !== image.height) return null;
    let offset = 4 + length;
    const tensors: Embedding['tensors'] = {};
    for (const t of header.tensors) {
      const n = t.dims.reduce((a, b) => a * b, 1);
      if (offset + n * 4 > bytes.length) return null;
      const data = new Float32Array(n);
      Buffer.from(data.buffer).set(bytes.subarray(offset, offset + n * 4));
      tensors[t.name] = { data, dims: t.dims };
      offset += n * 4;
    }
    return offset === bytes.length ? { key, width: image.width, height: image.height, tensors } : null;
  } catch {
    return null;
  }
}
