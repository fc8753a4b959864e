// The inference graph of a layers model with every conv + batch norm (+ ReLU/ReLU6) folded into one fused
// convolution: y = BN(conv(x, W)) becomes conv(x, W * s) + (beta - mean * s) with s = gamma / sqrt(var + eps).
// Two consumers: the TF.js runner (foldedInference.ts) and the ONNX exporter (onnxExport.ts), so both run
// exactly the same graph. A model with a layer kind not handled here has no folded graph.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { BilinearUpsample } from '../network/bilinearUpsample';

export type Activation = 'linear' | 'relu' | 'relu6';

export type FoldedOp =
  | {
      kind: 'conv';
      input: string;
      output: string;
      filter: tf.Tensor4D;
      bias: tf.Tensor1D | null;
      strides: [number, number];
      pad: 'same' | 'valid';
      activation: Activation;
      depthwise: boolean;
    }
  | {
      kind: 'batchNorm';
      input: string;
      output: string;
      mean: tf.Tensor1D;
      variance: tf.Tensor1D;
      beta: tf.Tensor1D | null;
      gamma: tf.Tensor1D | null;
      epsilon: number;
    }
  | { kind: 'relu' | 'relu6'; input: string; output: string }
  | { kind: 'softmax'; input: string; output: string }
  | { kind: 'pad'; input: string; output: string; top: number; bottom: number; left: number; right: number }
  | { kind: 'add' | 'mul'; inputs: string[]; output: string }
  | { kind: 'concat'; inputs: string[]; output: string }
  | { kind: 'upsample'; input: string; output: string; scale: [number, number]; mode: 'nearest' | 'bilinear' };

export interface FoldedGraph {
  input: string;
  /** The model's first output (its only one, for the segmentation network). */
  output: string;
  /** Every output of the model, in its order. */
  outputs: string[];
  /** In topological order; every input names the output of an earlier op, or the graph input. Channels last. */
  ops: FoldedOp[];
  /** The folded weights: the caller disposes them with `disposeGraph`. */
  held: tf.Tensor[];
}

/** What this reads of a layers-model layer (tfjs-layers' public types hide inboundNodes). */
export interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  getWeights(): tf.Tensor[];
  inboundNodes: { inboundLayers: LayerLike[] }[];
}

const HANDLED = new Set([
  'InputLayer',
  'Dropout',
  'Conv2D',
  'DepthwiseConv2D',
  'BatchNormalization',
  'ReLU',
  'ZeroPadding2D',
  'Add',
  'Multiply',
  'UpSampling2D',
  'Concatenate',
  'Softmax',
  BilinearUpsample.className,
]);

/** Whether a convolution layer's config has an option neither graph handles (dilation, channels first, a fused activation, a depth multiplier). */
export function unsupportedConv(cfg: Record<string, unknown>, depthwise: boolean): boolean {
  return (
    (cfg.dilationRate as number[] | undefined)?.some((d) => d !== 1) === true ||
    cfg.dataFormat === 'channels_first' ||
    (!!cfg.activation && cfg.activation !== 'linear') ||
    (depthwise && cfg.depthMultiplier !== 1)
  );
}

function inputsOf(layer: LayerLike): LayerLike[] {
  return layer.inboundNodes[0]?.inboundLayers ?? [];
}

/** Keras order of a batch norm's weights: gamma (if scale), beta (if center), moving mean, moving variance. */
function batchNormWeights(bn: LayerLike): {
  gamma: tf.Tensor1D | null;
  beta: tf.Tensor1D | null;
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  epsilon: number;
} {
  const cfg = bn.getConfig();
  const w = bn.getWeights() as tf.Tensor1D[];
  let k = 0;
  const gamma = cfg.scale !== false ? w[k++] : null;
  const beta = cfg.center !== false ? w[k++] : null;
  return { gamma, beta, mean: w[k++], variance: w[k++], epsilon: cfg.epsilon as number };
}

/** The folded graph of a model, or null when it has a layer (or a layer option) this does not handle. */
export function foldGraph(model: tfl.LayersModel): FoldedGraph | null {
  const layers = model.layers as unknown as LayerLike[];
  if (!layers.every((l) => HANDLED.has(l.getClassName()))) return null;
  const consumers = new Map<string, LayerLike[]>();
  for (const l of layers) for (const i of inputsOf(l)) consumers.set(i.name, [...(consumers.get(i.name) ?? []), l]);
  const only = (l: LayerLike, cls: string): LayerLike | null => {
    const c = consumers.get(l.name) ?? [];
    return c.length === 1 && c[0].getClassName() === cls ? c[0] : null;
  };
  // A layer folded into an op is known by that op's output name.
  const alias = new Map<string, string>();
  const name = (l: LayerLike): string => alias.get(l.name) ?? l.name;
  const ops: FoldedOp[] = [];
  const held: tf.Tensor[] = [];
  const fail = (): null => {
    tf.dispose(held);
    return null;
  };
  let input: string | null = null;
  for (const layer of layers) {
    if (alias.has(layer.name)) continue;
    const cls = layer.getClassName();
    // tfjs-layers' getConfig keys are camelCase.
    const cfg = layer.getConfig();
    const ins = inputsOf(layer).map(name);
    if (cls === 'InputLayer') {
      input = layer.name;
      continue;
    }
    // Dropout is an identity at inference: its output is its input.
    if (cls === 'Dropout') {
      alias.set(layer.name, ins[0]);
      continue;
    }
    if (cls === 'Conv2D' || cls === 'DepthwiseConv2D') {
      const depthwise = cls === 'DepthwiseConv2D';
      if (unsupportedConv(cfg, depthwise)) return fail();
      const [kernel, convBias] = layer.getWeights() as [tf.Tensor4D, tf.Tensor1D | undefined];
      const bn = only(layer, 'BatchNormalization');
      let filter = kernel;
      let bias: tf.Tensor1D | null = convBias ?? null;
      const covers = [layer.name];
      if (bn) {
        const axis = bn.getConfig().axis;
        if (axis !== -1 && axis !== 3) return fail();
        const { gamma, beta, mean, variance, epsilon } = batchNormWeights(bn);
        const folded = tf.tidy(() => {
          const s = tf.div(gamma ?? tf.onesLike(mean), tf.sqrt(tf.add(variance, tf.scalar(epsilon))));
          // A depthwise kernel is [kh, kw, channels, 1]: its channels are on the third axis.
          const scaled = depthwise ? tf.mul(kernel, tf.reshape(s, [1, 1, -1, 1])) : tf.mul(kernel, s);
          const shift = tf.sub(beta ?? tf.zerosLike(mean), tf.mul(convBias ? tf.sub(mean, convBias) : mean, s));
          return { scaled: scaled as tf.Tensor4D, shift: shift as tf.Tensor1D };
        });
        filter = folded.scaled;
        bias = folded.shift;
        held.push(filter, bias);
        covers.push(bn.name);
      }
      let activation: Activation = 'linear';
      const relu = only(bn ?? layer, 'ReLU');
      const maxValue = relu?.getConfig().maxValue as number | null | undefined;
      if (relu && bias && (maxValue == null || maxValue === 6)) {
        activation = maxValue === 6 ? 'relu6' : 'relu';
        covers.push(relu.name);
      }
      const output = covers[covers.length - 1];
      covers.forEach((n) => alias.set(n, output));
      ops.push({
        kind: 'conv',
        input: ins[0],
        output,
        filter,
        bias,
        strides: cfg.strides as [number, number],
        pad: cfg.padding as 'same' | 'valid',
        activation,
        depthwise,
      });
      continue;
    }
    let op: FoldedOp | null = null;
    if (cls === 'BatchNormalization') {
      op = { kind: 'batchNorm', input: ins[0], output: layer.name, ...batchNormWeights(layer) };
    } else if (cls === 'ReLU' && (cfg.maxValue == null || cfg.maxValue === 6)) {
      op = { kind: cfg.maxValue === 6 ? 'relu6' : 'relu', input: ins[0], output: layer.name };
    } else if (cls === 'ZeroPadding2D' && cfg.dataFormat !== 'channels_first') {
      const [[top, bottom], [left, right]] = cfg.padding as [[number, number], [number, number]];
      op = { kind: 'pad', input: ins[0], output: layer.name, top, bottom, left, right };
    } else if (cls === 'Add') {
      op = { kind: 'add', inputs: ins, output: layer.name };
    } else if (cls === 'Multiply' && ins.length === 2) {
      op = { kind: 'mul', inputs: ins, output: layer.name };
    } else if (cls === 'Concatenate' && (cfg.axis === -1 || cfg.axis === 3)) {
      op = { kind: 'concat', inputs: ins, output: layer.name };
    } else if (cls === 'Softmax' && (cfg.axis === -1 || cfg.axis === 3 || cfg.axis === undefined)) {
      op = { kind: 'softmax', input: ins[0], output: layer.name };
    } else if (
      cls === 'UpSampling2D' &&
      (cfg.interpolation ?? 'nearest') === 'nearest' &&
      cfg.dataFormat !== 'channels_first'
    ) {
      op = {
        kind: 'upsample',
        input: ins[0],
        output: layer.name,
        scale: cfg.size as [number, number],
        mode: 'nearest',
      };
    } else if (cls === BilinearUpsample.className) {
      op = {
        kind: 'upsample',
        input: ins[0],
        output: layer.name,
        scale: [cfg.factor as number, cfg.factor as number],
        mode: 'bilinear',
      };
    }
    if (!op) return fail();
    ops.push(op);
  }
  const outputs = model.outputs.map((o) => name((o as unknown as { sourceLayer: LayerLike }).sourceLayer));
  if (!input || outputs.length === 0) return fail();
  return { input, output: outputs[0], outputs, ops, held };
}

export function disposeGraph(graph: FoldedGraph): void {
  tf.dispose(graph.held);
}
