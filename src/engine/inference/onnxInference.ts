// Inference through onnxruntime-node when it is installed (an optionalDependency: its CPU binaries ship in the
// npm package and it runs on both cores, where TF.js's wasm backend runs one thread under Node). The model is
// exported from the same folded graph as the TF.js path (onnxExport.ts) and checked against TF.js on a fixed
// input every time it is exported, that is for every set of weights: a mismatch falls back to TF.js.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type * as Ort from 'onnxruntime-node';
import { disposeGraph, foldGraph } from './foldedGraph';
import { foldedForward, weightsHash } from './foldedInference';
import { exportOnnx } from './onnxExport';

/**
 * Channels-last window in, channels-last probabilities out. `key`, when given, names the window (which image,
 * where, mirrored or not) for a forward that keeps what it computed of it (splitForward.ts).
 */
export type WindowForward = (x: Float32Array, height: number, width: number, key?: string) => Promise<Float32Array>;

export type InferenceChoice = 'auto' | 'onnx' | 'tfjs';

/** Largest difference from TF.js tolerated in the check of an exported model (probabilities). */
export const ONNX_TOLERANCE = 1e-4;

let choice: InferenceChoice =
  process.env.MASKLOOP_INFERENCE === 'tfjs' || process.env.MASKLOOP_INFERENCE === 'onnx'
    ? process.env.MASKLOOP_INFERENCE
    : 'auto';
let ort: typeof Ort | null | undefined;
let ortError = '';
let lastCheck = '';

export function setInferenceChoice(c: InferenceChoice): void {
  choice = c;
}

/** The GPU backend TF.js trains on, when it has one: the network's pre-labels then run there too. */
let gpuBackend: string | null = null;

/** Called when the process's TF.js backend is resolved: a GPU backend (webgpu, tensorflow-gpu) or null. */
export function setGpuBackend(name: string | null): void {
  gpuBackend = name;
}

/** The runtime choice in force ('auto' unless set or MASKLOOP_INFERENCE says otherwise). */
export function inferenceChoice(): InferenceChoice {
  return choice;
}

/** onnxruntime-node, or null when it cannot load (`ortLoadError` says why). Loaded once. */
export function loadOrt(): typeof Ort | null {
  if (ort !== undefined) return ort;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ort = require('onnxruntime-node') as typeof Ort;
  } catch (err) {
    ort = null;
    ortError = ortMissingBinary() ?? (err as Error).message.split('\n')[0];
  }
  return ort;
}

/**
 * When onnxruntime-node is installed but ships no binary for this platform (1.30 has none for macOS on Intel),
 * says so; null otherwise.
 */
export function ortMissingBinary(platform: string = process.platform, arch: string = process.arch): string | null {
  let dir: string;
  try {
    dir = path.dirname(require.resolve('onnxruntime-node/package.json'));
  } catch {
    return null;
  }
  const binding = path.join(dir, 'bin', 'napi-v6', platform, arch, 'onnxruntime_binding.node');
  return fs.existsSync(binding)
    ? null
    : `onnxruntime-node has no binary for ${platform}-${arch}, so pre-labels run on TF.js (WebAssembly)`;
}

/** Why onnxruntime-node could not load ('' when it loaded or was not tried). */
export function ortLoadError(): string {
  return ortError;
}

/** Which runtime pre-labels, and why: for `maskloop info`, the bench and the status bar details. */
export function inferenceReport(): { runtime: 'onnxruntime' | 'tfjs'; reason: string } {
  if (choice === 'tfjs') return { runtime: 'tfjs', reason: 'MASKLOOP_INFERENCE=tfjs' };
  if (gpuBackend && choice === 'auto')
    return { runtime: 'tfjs', reason: `the network runs on the GPU (${gpuBackend}); onnxruntime runs on the CPU only` };
  const o = loadOrt();
  if (!o) return { runtime: 'tfjs', reason: `onnxruntime-node is not installed (${ortError})` };
  if (lastCheck) return { runtime: 'tfjs', reason: lastCheck };
  return {
    runtime: 'onnxruntime',
    reason: `onnxruntime-node ${o.env.versions.node ?? ''}, ${threads()} threads, each exported model checked against TF.js`,
  };
}

/**
 * The options of every session maskloop runs: both cores (threads()), sequential, fully optimised, quiet, no
 * spinning between runs.
 * `arena: false` for graphs whose inputs change size from run to run (bands of an image): their buffers are
 * not kept in an arena between runs.
 */
export function sessionOptions(arena = true): Ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: threads(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: arena,
    logSeverityLevel: 3,
    // Worker threads sleep when a run ends instead of spinning: a round alternates between several sessions
    // (network, edge refinement, pixel features, heads), and one session's spinning workers took the cores from
    // the next: the edge refinement ran 36 ms alone and 56-71 ms between other sessions.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/** Threads an onnxruntime session uses: MASKLOOP_THREADS, else the cores, at most 4. */
export function threads(): number {
  return Math.max(1, Math.min(4, Number(process.env.MASKLOOP_THREADS) || os.availableParallelism()));
}

interface Built {
  run: WindowForward;
  release: () => Promise<void>;
}
interface Entry {
  hash: number;
  built: Promise<Built | null>;
}
const cache = new WeakMap<tfl.LayersModel, Entry>();

async function build(model: tfl.LayersModel, o: typeof Ort): Promise<Built | null> {
  const graph = foldGraph(model);
  if (!graph) return null;
  const channels = (model.outputs[0].shape[3] as number | null) ?? 0;
  let bytes: Uint8Array;
  try {
    bytes = await exportOnnx(graph, channels);
  } finally {
    disposeGraph(graph);
  }
  const session = await o.InferenceSession.create(bytes, sessionOptions());
  const run: WindowForward = async (x, height, width) => {
    const out = await session.run({ image: new o.Tensor('float32', x, [1, height, width, 3]) });
    return out.probs.data as Float32Array;
  };
  if (!(await matchesTf(model, run))) {
    await session.release();
    return null;
  }
  return { run, release: () => session.release() };
}

/**
 * The check of an exported forward: the same fixed input through it and through TF.js. False (and `lastCheck`
 * says by how much they differ) when they differ by more than ONNX_TOLERANCE.
 */
export async function matchesTf(model: tfl.LayersModel, run: WindowForward): Promise<boolean> {
  const size = 64;
  const probe = tf.randomUniform([1, size, size, 3], -1, 1, 'float32', 17) as tf.Tensor4D;
  const tfForward = foldedForward(model);
  try {
    const ref = tfForward ? tfForward(probe) : (model.predict(probe) as tf.Tensor);
    const expected = await ref.data();
    ref.dispose();
    const got = await run((await probe.data()) as Float32Array, size, size);
    let diff = 0;
    for (let i = 0; i < expected.length; i++) diff = Math.max(diff, Math.abs(expected[i] - got[i]));
    if (!(diff <= ONNX_TOLERANCE) || got.length !== expected.length) {
      lastCheck = `the exported model differs from TF.js by ${diff} (tolerance ${ONNX_TOLERANCE}): TF.js pre-labels`;
      return false;
    }
  } finally {
    tfForward?.dispose();
    probe.dispose();
  }
  lastCheck = '';
  return true;
}

/**
 * onnxruntime when pre-labels run through it: installed, and chosen (not 'tfjs', and no GPU backend under
 * 'auto'); null otherwise. Throws when it is chosen explicitly ('onnx') and cannot load.
 */
export function inferenceOrt(): typeof Ort | null {
  if (choice === 'tfjs' || (gpuBackend && choice === 'auto')) return null;
  const o = loadOrt();
  if (!o && choice === 'onnx') throw new Error(`MASKLOOP_INFERENCE=onnx but onnxruntime-node cannot load: ${ortError}`);
  return o;
}

/**
 * The onnxruntime forward of a model's current weights, or null (not installed, not chosen, a layer the
 * export does not know, or a failed check). Exported once per set of weights.
 */
export async function onnxWindowForward(model: tfl.LayersModel): Promise<WindowForward | null> {
  const o = inferenceOrt();
  if (!o) return null;
  const hash = await weightsHash(model);
  const hit = cache.get(model);
  if (hit && hit.hash === hash) return (await hit.built)?.run ?? null;
  // The session of the previous weights holds native memory: release it now, not whenever GC runs.
  if (hit) void hit.built.then((b) => b?.release());
  const built = build(model, o);
  cache.set(model, { hash, built });
  return (await built)?.run ?? null;
}

/** Releases a model's onnxruntime session (when the model itself is disposed). */
export async function releaseOnnx(model: tfl.LayersModel): Promise<void> {
  const hit = cache.get(model);
  cache.delete(model);
  await (await hit?.built)?.release();
}
