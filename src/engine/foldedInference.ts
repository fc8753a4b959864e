// Inference with batch norm folded into the convolution before it: y = BN(conv(x, W)) becomes
// conv(x, W * s) + (beta - mean * s) with s = gamma / sqrt(var + eps), and a ReLU after it rides along as the
// fused activation. On wasm, batch norm was 150 ms of a 690 ms 512x512 prediction (tf.profile). The graph of
// the layers model is interpreted layer by layer; a model with a layer kind not handled here is not folded.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

export type Forward = ((x: tf.Tensor4D) => tf.Tensor4D) & { dispose(): void };

interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  getWeights(): tf.Tensor[];
  inboundNodes: { inboundLayers: LayerLike[] }[];
}

const HANDLED = new Set(['InputLayer', 'Conv2D', 'DepthwiseConv2D', 'BatchNormalization', 'ReLU', 'ZeroPadding2D', 'Add', 'UpSampling2D', 'Concatenate', 'Softmax']);

function inputsOf(layer: LayerLike): LayerLike[] {
  return layer.inboundNodes[0]?.inboundLayers ?? [];
}

/**
 * A forward function equal to `model.predict` (to float rounding) with every conv + batch norm (+ ReLU)
 * folded into one fused convolution, or null when the model has layers this does not handle. The folded
 * weights are computed now: build it again after the weights change.
 */
export function foldedForward(model: tfl.LayersModel): Forward | null {
  const layers = model.layers as unknown as LayerLike[];
  if (!layers.every((l) => HANDLED.has(l.getClassName()))) return null;
  const consumers = new Map<string, LayerLike[]>();
  for (const l of layers) for (const i of inputsOf(l)) consumers.set(i.name, [...(consumers.get(i.name) ?? []), l]);
  const only = (l: LayerLike, cls: string): LayerLike | null => {
    const c = consumers.get(l.name) ?? [];
    return c.length === 1 && c[0].getClassName() === cls ? c[0] : null;
  };

  interface Step { run: (get: (name: string) => tf.Tensor) => tf.Tensor; output: string; covers: string[] }
  const steps: Step[] = [];
  const held: tf.Tensor[] = [];
  const covered = new Set<string>();
  for (const layer of layers) {
    if (covered.has(layer.name)) continue;
    const cls = layer.getClassName();
    const cfg = layer.getConfig();
    const ins = inputsOf(layer).map((l) => l.name);
    if (cls === 'InputLayer') continue;
    if (cls === 'Conv2D' || cls === 'DepthwiseConv2D') {
      const depthwise = cls === 'DepthwiseConv2D';
      const strides = cfg.strides as [number, number];
      const padding = cfg.padding as 'same' | 'valid';
      // tfjs-layers' getConfig keys are camelCase.
      if ((cfg.dilationRate as number[] | undefined)?.some((d) => d !== 1) || cfg.dataFormat === 'channels_first' || (cfg.activation && cfg.activation !== 'linear')) return null;
      if (depthwise && cfg.depthMultiplier !== 1) return null;
      const [kernel, convBias] = layer.getWeights() as [tf.Tensor4D, tf.Tensor1D | undefined];
      const bn = only(layer, 'BatchNormalization');
      let filter = kernel;
      let bias: tf.Tensor1D | undefined = convBias;
      let last = layer.name;
      const covers = [layer.name];
      if (bn) {
        const bcfg = bn.getConfig();
        if (bcfg.axis !== -1 && bcfg.axis !== 3) return null;
        const w = bn.getWeights();
        [filter, bias] = tf.tidy(() => {
          // Keras order: gamma (if scale), beta (if center), moving mean, moving variance.
          let k = 0;
          const gamma = bcfg.scale !== false ? w[k++] : tf.onesLike(w[w.length - 1]);
          const beta = bcfg.center !== false ? w[k++] : tf.zerosLike(w[w.length - 1]);
          const mean = w[k++];
          const variance = w[k++];
          const s = tf.div(gamma, tf.sqrt(tf.add(variance, tf.scalar(bcfg.epsilon as number))));
          // A depthwise kernel is [kh, kw, channels, 1]: its channels are on the third axis.
          const scaled = depthwise ? tf.mul(kernel, tf.reshape(s, [1, 1, -1, 1])) : tf.mul(kernel, s);
          return [scaled as tf.Tensor4D, tf.sub(beta, tf.mul(convBias ? tf.sub(mean, convBias) : mean, s)) as tf.Tensor1D];
        });
        held.push(filter, bias);
        last = bn.name;
        covers.push(bn.name);
      }
      let activation: 'relu' | 'relu6' | 'linear' = 'linear';
      const lastLayer = bn ?? layer;
      const relu = only(lastLayer, 'ReLU');
      const maxValue = relu?.getConfig().maxValue as number | null | undefined;
      if (relu && bias && (maxValue == null || maxValue === 6)) {
        activation = maxValue === 6 ? 'relu6' : 'relu';
        last = relu.name;
        covers.push(relu.name);
      }
      covers.forEach((n) => covered.add(n));
      const f = filter;
      const b = bias;
      steps.push({
        output: last, covers,
        run: depthwise
          ? (get) => tf.fused.depthwiseConv2d({ x: get(ins[0]) as tf.Tensor4D, filter: f, strides, pad: padding, bias: b, activation })
          : (get) => (b || activation !== 'linear'
            ? tf.fused.conv2d({ x: get(ins[0]) as tf.Tensor4D, filter: f, strides, pad: padding, bias: b, activation })
            : tf.conv2d(get(ins[0]) as tf.Tensor4D, f, strides, padding)),
      });
      continue;
    }
    if (cls === 'BatchNormalization') {
      const bcfg = cfg;
      const w = layer.getWeights();
      let k = 0;
      const gamma = bcfg.scale !== false ? w[k++] : undefined;
      const beta = bcfg.center !== false ? w[k++] : undefined;
      const mean = w[k++];
      const variance = w[k++];
      steps.push({ output: layer.name, covers: [layer.name], run: (get) => tf.batchNorm(get(ins[0]), mean, variance, beta, gamma, bcfg.epsilon as number) });
      continue;
    }
    const run: Step['run'] | null =
      cls === 'ReLU' && cfg.maxValue == null ? (get) => tf.relu(get(ins[0])) :
      cls === 'ReLU' && cfg.maxValue === 6 ? (get) => tf.relu6(get(ins[0])) :
      cls === 'ZeroPadding2D' && cfg.dataFormat !== 'channels_first' ? (get) => {
        const [[top, bottom], [left, right]] = cfg.padding as [[number, number], [number, number]];
        return tf.pad(get(ins[0]), [[0, 0], [top, bottom], [left, right], [0, 0]]);
      } :
      cls === 'Add' ? (get) => tf.addN(ins.map(get)) :
      cls === 'Concatenate' ? (get) => tf.concat(ins.map(get), (cfg.axis as number) ?? -1) :
      cls === 'Softmax' ? (get) => tf.softmax(get(ins[0]), (cfg.axis as number) ?? -1) :
      cls === 'UpSampling2D' && (cfg.interpolation ?? 'nearest') === 'nearest' ? (get) => {
        const t = get(ins[0]) as tf.Tensor4D;
        const [sh, sw] = cfg.size as [number, number];
        return tf.image.resizeNearestNeighbor(t, [t.shape[1] * sh, t.shape[2] * sw]);
      } : null;
    if (!run) return null;
    steps.push({ output: layer.name, covers: [layer.name], run });
  }
  const inputName = layers.find((l) => l.getClassName() === 'InputLayer')?.name;
  const outputName = (model.outputs[0] as unknown as { sourceLayer: { name: string } }).sourceLayer.name;
  if (!inputName) {
    tf.dispose(held);
    return null;
  }
  const run = (x: tf.Tensor4D): tf.Tensor4D => tf.tidy(() => {
    const values = new Map<string, tf.Tensor>([[inputName, x]]);
    const get = (name: string): tf.Tensor => {
      const v = values.get(name);
      if (!v) throw new Error(`folded inference: ${name} not computed yet`);
      return v;
    };
    for (const step of steps) {
      const out = step.run(get);
      for (const n of step.covers) values.set(n, out);
    }
    return get(outputName) as tf.Tensor4D;
  });
  // The folded weights are the caller's to dispose once the predictions are done.
  return Object.assign(run, { dispose: () => tf.dispose(held) });
}

const cache = new WeakMap<tfl.LayersModel, { hash: number; forward: Forward | null }>();

/** FNV-1a over every weight's bytes: any change of any weight (a training step) changes it. */
function weightsHash(model: tfl.LayersModel): number {
  let h = 0x811c9dc5;
  for (const w of model.getWeights()) {
    const v = w.dataSync() as Float32Array;
    const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
    for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i], 0x01000193);
  }
  return h >>> 0;
}

/**
 * The folded forward of a model, reused while its weights stay the same (the wasm backend packs each new
 * filter once, so folding again for every prediction would cost that packing every time).
 */
export function cachedFoldedForward(model: tfl.LayersModel): ((x: tf.Tensor4D) => tf.Tensor4D) | null {
  const hash = weightsHash(model);
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
