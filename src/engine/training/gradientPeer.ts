// Data-parallel training on both cores: TF.js on WebAssembly (or plain JS) runs on one thread, so a fine-tune
// left the other core idle. A gradient peer is a worker thread of the model process with its own TF.js and its
// own copy of the network: each step, it computes the gradients of its share of the batch while this thread
// computes the rest; the gradients are averaged (weighted by crops) and applied here, by the one optimiser.
// Before each step the peer gets the weights that changed (trainable weights and batch-norm statistics), so
// both copies step from the same weights. Tensors live only in the model process: the peer is a thread of it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import * as os from 'node:os';
import type { BackendName } from '../../protocol/settings';
import { resolvedBackend } from '../backends';
import type { Crop } from './augment';
import type { StepLoss } from './trainStep';

/** What this thread sends the peer. */
export type PeerRequest =
  | {
      type: 'init';
      backend: BackendName;
      /** The network's topology (model.toJSON(null, false)). */
      topology: unknown;
      /** Every weight's shape, in networkWeights order, as a check that both copies line up. */
      shapes: number[][];
    }
  | {
      type: 'step';
      id: number;
      /** Weights to write first (networkWeights indices and values). */
      write: { index: number[]; values: Float32Array[] };
      /** The variables to differentiate, in the optimiser's order (networkWeights indices). */
      trainable: number[];
      /** The non-trainable weights a training step changes (batch-norm statistics), sent back after it. */
      report: number[];
      crops: Crop[];
      size: number;
      weights: StepLoss;
    };

/** What the peer answers. */
export type PeerReply =
  | { type: 'ready' }
  | {
      type: 'grads';
      id: number;
      loss: number;
      /** In the order of the step's `trainable`. */
      grads: Float32Array[];
      /** In the order of the step's `report`. */
      reported: Float32Array[];
      /** Tensors alive in the peer after the step (a leak shows as growth). */
      tensors: number;
    }
  | { type: 'error'; message: string };

/**
 * The network's weights in an order both copies share whatever is frozen: layer by layer, each layer's own
 * order. (model.weights lists every trainable weight first, so its order changes when a stage is unfrozen.)
 */
export function networkWeights(model: tfl.LayersModel): tfl.LayerVariable[] {
  return model.layers.flatMap((l) => l.weights);
}

/** The peer's script, built beside the model process (dist/gradientWorker.js); null when it is not there. */
export function gradientWorkerFile(from = __dirname): string | null {
  let dir = from;
  for (let i = 0; i < 6; i++) {
    for (const candidate of [path.join(dir, 'gradientWorker.js'), path.join(dir, 'dist', 'gradientWorker.js')])
      if (fs.existsSync(candidate)) return candidate;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

/**
 * How many threads compute gradients. Native TensorFlow already uses every core: always 1 there. Where training
 * runs on one thread (WebAssembly, plain JS): `setting` when it is 1 or more (at most 2: the default batch is
 * two crops); automatic (0): 2 on a machine with two cores or more, else 1.
 */
export function gradientThreads(setting: number, backend: BackendName, cores: number): number {
  if (backend !== 'wasm' && backend !== 'cpu') return 1;
  if (setting >= 1) return Math.min(2, Math.floor(setting));
  return cores >= 2 ? 2 : 1;
}

export class GradientPeer {
  private nextId = 0;
  private pending: { resolve: (r: PeerReply) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private readonly index: Map<tf.Variable, number>;
  private readonly weights: tfl.LayerVariable[];
  /** Tensors alive in the peer after its last step. */
  peerTensors = 0;

  private constructor(
    private readonly worker: Worker,
    private readonly model: tfl.LayersModel,
  ) {
    this.weights = networkWeights(model);
    this.index = new Map(this.weights.map((w, i) => [w.read() as tf.Variable, i]));
    worker.on('message', (m: PeerReply) => this.settle(m));
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => this.fail(new Error(`the gradient thread stopped (exit code ${code})`)));
  }

  private settle(m: PeerReply): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    if (m.type === 'error') p.reject(new Error(`gradient thread: ${m.message}`));
    else p.resolve(m);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const p = this.pending;
    this.pending = null;
    p?.reject(e);
  }

  private ask(request: PeerRequest, transfer: ArrayBuffer[] = []): Promise<PeerReply> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new Error('the gradient thread is already busy'));
    return new Promise<PeerReply>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage(request, transfer);
    });
  }

  /** Starts a peer with a copy of the model (its topology now; its weights go with each step). */
  static async start(model: tfl.LayersModel, backend: BackendName, workerFile: string): Promise<GradientPeer> {
    const worker = new Worker(workerFile);
    const peer = new GradientPeer(worker, model);
    try {
      const reply = await peer.ask({
        type: 'init',
        backend,
        topology: model.toJSON(null, false),
        shapes: networkWeights(model).map((w) => w.shape.map((d) => d ?? 0)),
      });
      if (reply.type !== 'ready') throw new Error(`the gradient thread answered ${reply.type} to init`);
      return peer;
    } catch (err) {
      await worker.terminate();
      throw err;
    }
  }

  /** The weights a step changes: the trainable ones, and the other weights of the layers that hold them. */
  private changing(trainable: tf.Variable[]): { trainable: number[]; report: number[] } {
    const trainableIndex = trainable.map((v) => {
      const i = this.index.get(v);
      if (i === undefined) throw new Error(`variable ${v.name} is not one of the network's weights`);
      return i;
    });
    const set = new Set(trainableIndex);
    const report: number[] = [];
    for (const layer of this.model.layers) {
      if (!layer.trainableWeights.some((w) => set.has(this.index.get(w.read() as tf.Variable) ?? -1))) continue;
      for (const w of layer.nonTrainableWeights) {
        const i = this.index.get(w.read() as tf.Variable);
        if (i !== undefined && !set.has(i)) report.push(i);
      }
    }
    return { trainable: trainableIndex, report };
  }

  /**
   * Sends the peer its crops and the weights to step from; `local` then computes this thread's gradients while
   * the peer computes its own. Returns both, with the peer's values of the reported statistics.
   */
  async step<T>(
    trainable: tf.Variable[],
    crops: Crop[],
    size: number,
    weights: StepLoss,
    local: () => T,
    sendAll: boolean,
  ): Promise<{
    local: T;
    loss: number;
    grads: Float32Array[];
    /** The statistics the peer sent back, and its values of them. */
    report: tfl.LayerVariable[];
    reported: Float32Array[];
  }> {
    const { trainable: trainableIndex, report } = this.changing(trainable);
    const write = sendAll ? this.weights.map((_, i) => i) : [...trainableIndex, ...report];
    const values = write.map((i) => Float32Array.from(this.weights[i].read().dataSync() as Float32Array));
    const transfer = [...values.map((v) => v.buffer), ...crops.flatMap((c) => [c.x.buffer, c.y.buffer, c.band.buffer])];
    const id = ++this.nextId;
    const reply = this.ask(
      { type: 'step', id, write: { index: write, values }, trainable: trainableIndex, report, crops, size, weights },
      transfer as ArrayBuffer[],
    );
    // Computed while the peer works (this thread's share); a failure of either is reported, not left pending.
    let mine: T;
    try {
      mine = local();
    } catch (err) {
      await reply.catch(() => undefined);
      throw err;
    }
    const r = await reply;
    if (r.type !== 'grads' || r.id !== id) throw new Error(`the gradient thread answered ${r.type} to step ${id}`);
    this.peerTensors = r.tensors;
    return {
      local: mine,
      loss: r.loss,
      grads: r.grads,
      report: report.map((i) => this.weights[i]),
      reported: r.reported,
    };
  }

  async close(): Promise<void> {
    this.failure ??= new Error('the gradient thread was closed');
    await this.worker.terminate();
  }
}

/**
 * The gradient peer a fine-tune uses, or none, with how many threads compute and why. A peer that cannot
 * start (no script beside the model process, a failed build of the copy) leaves training on one thread.
 */
export async function startGradientPeer(
  model: tfl.LayersModel,
  setting: number,
): Promise<{ peer: GradientPeer | null; count: number; reason: string }> {
  const backend = resolvedBackend()?.backend ?? 'cpu';
  const cores = os.availableParallelism();
  const count = gradientThreads(setting, backend, cores);
  if (count < 2)
    return {
      peer: null,
      count: 1,
      reason: setting === 1 ? 'one thread, as set' : `one thread (${backend}, ${cores} core${cores === 1 ? '' : 's'})`,
    };
  const file = gradientWorkerFile();
  if (!file) return { peer: null, count: 1, reason: "one thread: the gradient thread's script is missing" };
  try {
    const peer = await GradientPeer.start(model, backend, file);
    return { peer, count: 2, reason: `two threads (${backend}, ${cores} cores), each on half of every batch` };
  } catch (err) {
    return { peer: null, count: 1, reason: `one thread: the second could not start (${(err as Error).message})` };
  }
}
