// Inference on TF.js through the folded graph (foldedGraph.ts): batch norm folded into the convolution
// before it, ReLU or ReLU6 fused; cached per model while its weights stay the same.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { disposeGraph, foldGraph, type FoldedOp } from './foldedGraph';

export type Forward = ((x: tf.Tensor4D) => tf.Tensor4D) & { dispose(): void };

function runOp(op: FoldedOp, get: (name: string) => tf.Tensor): tf.Tensor {
  switch (op.kind) {
    case 'conv': {
      const x = get(op.input) as tf.Tensor4D;
      const args = {
        x,
        filter: op.filter,
        strides: op.strides,
        pad: op.pad,
        bias: op.bias ?? undefined,
        activation: op.activation,
      };
      if (op.depthwise) return tf.fused.depthwiseConv2d(args);
      return op.bias || op.activation !== 'linear'
        ? tf.fused.conv2d(args)
        : tf.conv2d(x, op.filter, op.strides, op.pad);
    }
    case 'batchNorm':
      return tf.batchNorm(get(op.input), op.mean, op.variance, op.beta ?? undefined, op.gamma ?? undefined, op.epsilon);
    case 'relu':
      return tf.relu(get(op.input));
    case 'relu6':
      return tf.relu6(get(op.input));
    case 'softmax':
      return tf.softmax(get(op.input), -1);
    case 'pad':
      return tf.pad(get(op.input), [
        [0, 0],
        [op.top, op.bottom],
        [op.left, op.right],
        [0, 0],
      ]);
    case 'add':
      return tf.addN(op.inputs.map(get));
    case 'mul':
      return tf.mul(get(op.inputs[0]), get(op.inputs[1]));
    case 'concat':
      return tf.concat(op.inputs.map(get), -1);
    case 'upsample': {
      const t = get(op.input) as tf.Tensor4D;
      const size: [number, number] = [t.shape[1] * op.scale[0], t.shape[2] * op.scale[1]];
      return op.mode === 'bilinear'
        ? tf.image.resizeBilinear(t, size, false, true)
        : tf.image.resizeNearestNeighbor(t, size);
    }
  }
}

/**
 * A forward function equal to `model.predict` (to float rounding) with every conv + batch norm (+ ReLU)
 * folded into one fused convolution, or null when the model has layers this does not handle. On wasm, batch
 * norm was 150 ms of a 690 ms 512x512 prediction (tf.profile). The folded weights are computed now: build it
 * again after the weights change.
 */
export function foldedForward(model: tfl.LayersModel): Forward | null {
  const graph = foldGraph(model);
  if (!graph) return null;
  const run = (x: tf.Tensor4D): tf.Tensor4D =>
    tf.tidy(() => {
      const values = new Map<string, tf.Tensor>([[graph.input, x]]);
      const get = (name: string): tf.Tensor => {
        const v = values.get(name);
        if (!v) throw new Error(`folded inference: ${name} not computed yet`);
        return v;
      };
      for (const op of graph.ops) values.set(op.output, runOp(op, get));
      return get(graph.output) as tf.Tensor4D;
    });
  // The folded weights are the caller's to dispose once the predictions are done.
  return Object.assign(run, { dispose: () => disposeGraph(graph) });
}

const cache = new WeakMap<tfl.LayersModel, { hash: number; forward: Forward | null }>();

/**
 * FNV-1a over every weight's bytes: any change of any weight (a training step) changes it. Read asynchronously:
 * GPU backends cannot read synchronously under Node.
 */
export async function weightsHash(model: tfl.LayersModel): Promise<number> {
  return tensorsHash(model.getWeights());
}

/** FNV-1a over the bytes of these tensors (float32), read asynchronously. */
export async function tensorsHash(tensors: readonly tf.Tensor[]): Promise<number> {
  let h = 0x811c9dc5;
  for (const w of tensors) {
    const v = (await w.data()) as Float32Array;
    const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
    for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i], 0x01000193);
  }
  return h >>> 0;
}

/**
 * The folded forward of a model, reused while its weights stay the same (the wasm backend packs each new
 * filter once, so folding again for every prediction would cost that packing every time).
 */
export async function cachedFoldedForward(model: tfl.LayersModel): Promise<((x: tf.Tensor4D) => tf.Tensor4D) | null> {
  const hash = await weightsHash(model);
  const hit = cache.get(model);
  if (hit && hit.hash === hash) return hit.forward;
  hit?.forward?.dispose();
  const forward = foldedForward(model);
  cache.set(model, { hash, forward });
  return forward;
}

/** Frees a model's cached folded weights (when the model itself is disposed). */
export function releaseFolded(model: tfl.LayersModel): void {
  cache.get(model)?.forward?.dispose();
  cache.delete(model);
}
