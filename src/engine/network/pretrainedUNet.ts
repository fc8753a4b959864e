// The pretrained encoder routes: a shipped encoder (batch norms folded into its convolutions when the
// network is built, so a frozen encoder is exactly the shipped one and has no batch statistics that a
// fine-tune could move) under the engine's residual decoder. Two encoders ship:
// - 'mobilenetv2': MobileNetV2 (models/encoders/mobilenetv2/, made by scripts/extract-encoder.mjs from
//   nsfwjs@4.4.0). It is itself residual (inverted residual blocks with identity shortcuts); its expand-ReLU6
//   outputs are the skips at strides 2, 4, 8 and 16.
// - 'distilled-resnet': a ResNet-style encoder of the engine's basic blocks, distilled from that MobileNetV2's
//   features on photographs (models/encoders/distilled-resnet/, made by `npm run distill-encoder`).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { PretrainedEncoderKind } from '../../protocol/encoderKind';
import type { LayerLike } from '../inference/foldedGraph';
import { CONTEXT_LAYERS } from './contextHead';
import { BilinearUpsample } from './bilinearUpsample';
import { Builder, type NetworkConfig } from './resUNet';

export interface EncoderSpec {
  /** Folder of the shipped files, relative to the extension's root. */
  folder: string;
  /** Feature layers, from stride 2 to stride 16; they also end the encoder's four stages. */
  features: string[];
  /**
   * A further stride-16 layer the context head reads (contextHead.ts), when the encoder has one worth reading:
   * for MobileNetV2, a layer before the blocks nsfwjs fine-tuned as a classifier.
   */
  contextExtra?: string;
  provenance: string;
}

export const ENCODERS: Record<PretrainedEncoderKind, EncoderSpec> = {
  mobilenetv2: {
    folder: path.join('models', 'encoders', 'mobilenetv2'),
    features: ['block_1_expand_relu', 'block_3_expand_relu', 'block_6_expand_relu', 'block_13_expand_relu'],
    contextExtra: 'block_10_depthwise_relu',
    provenance:
      'MobileNetV2 (Keras ImageNet weights as shipped, uint8-quantized, in nsfwjs@4.4.0, MIT; blocks 11-13 fine-tuned there as an image classifier), layers up to block_13_expand_relu, batch norm folded',
  },
  'distilled-resnet': {
    folder: path.join('models', 'encoders', 'distilled-resnet'),
    features: ['rn_s1_b1_out', 'rn_s2_b1_out', 'rn_s3_b1_out', 'rn_s4_b2_out'],
    provenance:
      "ResNet-style encoder (residual basic blocks, widths 16/32/64/128 at strides 2/4/8/16) distilled from the shipped MobileNetV2's features on Debian photographs by npm run distill-encoder (see distill-report.json), batch norm folded",
  },
};

/** Pretrained-encoder network defaults: decoder widths at strides 2, 4, 8, 16 and an 8-wide full-resolution head. */
export const PRETRAINED_NETWORK: Omit<NetworkConfig, 'numClasses'> = {
  stemWidth: 8,
  stageWidths: [8, 16, 32, 32],
  blocksPerStage: 1,
  residual: true,
  bnMomentum: 0.9,
  seed: 1,
  encoder: 'mobilenetv2',
  encoderTrainableStages: 0,
  contextHead: true,
};

/** The folder holding a shipped encoder: searched upwards from this bundle (dist/, dist-test/..., src/...). */
export function findEncoderFolder(kind: PretrainedEncoderKind = 'mobilenetv2', start = __dirname): string {
  const folder = ENCODERS[kind].folder;
  for (let dir = start; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, folder);
    if (fs.existsSync(path.join(candidate, 'model.json'))) return candidate;
    if (path.dirname(dir) === dir)
      throw new Error(
        `the pretrained encoder (${folder}/model.json) was not found above ${start}; the installation is incomplete`,
      );
  }
}

/** Loads a shipped encoder as it was written (batch norms not folded), from local files only. */
export async function loadShippedEncoder(folder = findEncoderFolder()): Promise<tfl.LayersModel> {
  const jsonFile = path.join(folder, 'model.json');
  const json = JSON.parse(await fs.promises.readFile(jsonFile, 'utf8')) as {
    modelTopology: object;
    weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  };
  const group = json.weightsManifest[0];
  const bytes = await fs.promises.readFile(path.join(folder, group.paths[0]));
  const expected = group.weights.reduce((n, w) => n + 4 * w.shape.reduce((a, d) => a * d, 1), 0);
  if (bytes.length !== expected)
    throw new Error(
      `${path.join(folder, group.paths[0])}: ${bytes.length} bytes, the manifest needs ${expected}; reinstall the extension`,
    );
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return tfl.loadLayersModel(
    tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: group.weights, weightData }),
  );
}

/** Kernel and bias of a convolution with the batch norm after it folded in: W * s and beta - mean * s. */
function foldBatchNorm(kernel: tf.Tensor, bn: LayerLike, depthwise: boolean): [tf.Tensor, tf.Tensor] {
  const cfg = bn.getConfig();
  const [gamma, beta, mean, variance] = bn.getWeights();
  return tf.tidy(() => {
    const s = tf.div(gamma, tf.sqrt(tf.add(variance, tf.scalar(cfg.epsilon as number))));
    // A depthwise kernel is [kh, kw, channels, 1]: the scale runs along its third axis.
    const scaled = depthwise ? tf.mul(kernel, tf.reshape(s, [1, 1, -1, 1])) : tf.mul(kernel, s);
    return [scaled, tf.sub(beta, tf.mul(mean, s))];
  });
}

/**
 * Rebuilds a shipped encoder's layers on `input` with each batch norm folded into the convolution before it.
 * Returns every layer's output by name and a function that sets the folded weights (call it once the model
 * holding the layers is built).
 */
function copyEncoder(
  encoder: tfl.LayersModel,
  input: tfl.SymbolicTensor,
): { tensors: Map<string, tfl.SymbolicTensor>; setWeights: () => void } {
  const source = encoder.layers as unknown as LayerLike[];
  const consumers = new Map<string, LayerLike[]>();
  for (const l of source)
    for (const i of l.inboundNodes[0]?.inboundLayers ?? [])
      consumers.set(i.name, [...(consumers.get(i.name) ?? []), l]);
  const tensors = new Map<string, tfl.SymbolicTensor>();
  const pending: { layer: tfl.layers.Layer; weights: tf.Tensor[] }[] = [];
  const folded = new Set<string>();
  for (const layer of source) {
    const cls = layer.getClassName();
    const cfg = layer.getConfig();
    if (cls === 'InputLayer') {
      tensors.set(layer.name, input);
      continue;
    }
    if (folded.has(layer.name)) continue;
    const inputs = layer.inboundNodes[0].inboundLayers.map((l) => {
      const t = tensors.get(l.name);
      if (!t) throw new Error(`encoder layer ${layer.name}: input ${l.name} not built`);
      return t;
    });
    let out: tfl.SymbolicTensor;
    if (cls === 'Conv2D' || cls === 'DepthwiseConv2D') {
      const next = consumers.get(layer.name) ?? [];
      const bn = next.length === 1 && next[0].getClassName() === 'BatchNormalization' ? next[0] : null;
      if (!bn) throw new Error(`encoder layer ${layer.name} is not followed by a batch norm`);
      const depthwise = cls === 'DepthwiseConv2D';
      const common = {
        kernelSize: cfg.kernelSize as number[],
        strides: cfg.strides as number[],
        padding: cfg.padding as 'same' | 'valid',
        useBias: true,
        name: layer.name,
      };
      const conv = depthwise
        ? tfl.layers.depthwiseConv2d({ ...common, kernelSize: common.kernelSize[0] })
        : tfl.layers.conv2d({ ...common, filters: cfg.filters as number });
      out = conv.apply(inputs[0]) as tfl.SymbolicTensor;
      pending.push({ layer: conv, weights: foldBatchNorm(layer.getWeights()[0], bn, depthwise) });
      folded.add(bn.name);
      tensors.set(bn.name, out);
    } else if (cls === 'ReLU') {
      out = tfl.layers
        .reLU({ maxValue: cfg.maxValue as number | undefined, name: layer.name })
        .apply(inputs[0]) as tfl.SymbolicTensor;
    } else if (cls === 'ZeroPadding2D') {
      out = tfl.layers
        .zeroPadding2d({ padding: cfg.padding as [[number, number], [number, number]], name: layer.name })
        .apply(inputs[0]) as tfl.SymbolicTensor;
    } else if (cls === 'Add') {
      out = tfl.layers.add({ name: layer.name }).apply(inputs) as tfl.SymbolicTensor;
    } else {
      throw new Error(`encoder layer ${layer.name}: ${cls} is not handled`);
    }
    tensors.set(layer.name, out);
  }
  return {
    tensors,
    setWeights: () => {
      for (const p of pending) {
        p.layer.setWeights(p.weights);
        tf.dispose(p.weights);
      }
    },
  };
}

/** A shipped encoder with its batch norms folded, whose outputs are its four feature maps (the distillation's teacher). */
export function buildFoldedEncoder(encoder: tfl.LayersModel, kind: PretrainedEncoderKind): tfl.LayersModel {
  const input = tfl.input({ shape: [null, null, 3], name: 'image' });
  const { tensors, setWeights } = copyEncoder(encoder, input);
  const model = tfl.model({
    inputs: input,
    outputs: ENCODERS[kind].features.map((n) => tensors.get(n) as tfl.SymbolicTensor),
    name: `${kind}_folded`,
  });
  setWeights();
  model.trainable = false;
  return model;
}

/**
 * Builds the pretrained-encoder U-Net: the shipped MobileNetV2 layers (batch norm folded, frozen unless
 * `encoderTrainableStages` says otherwise) feed a decoder of residual basic blocks that upsamples from stride
 * 16, adds each skip (brought to the same width by a 1x1 convolution) and ends at full resolution, where a thin
 * stem of the image itself brings back the exact edges. Inputs are normalised to [-1, 1], as MobileNetV2 was trained.
 */
export function buildPretrainedUNet(config: NetworkConfig, encoder: tfl.LayersModel): tfl.LayersModel {
  if (config.numClasses < 2)
    throw new Error(`a segmentation network needs at least 2 classes, got ${config.numClasses}`);
  if (config.stageWidths.length !== 4)
    throw new Error('the pretrained encoder has 4 stages: stageWidths needs 4 decoder widths');
  const b = new Builder(config);
  const input = tfl.input({ shape: [null, null, 3], name: 'image' });
  const kind = config.encoder === 'scratch' || config.encoder === undefined ? null : config.encoder;
  if (!kind) throw new Error('buildPretrainedUNet needs a pretrained encoder kind');
  const { tensors, setWeights } = copyEncoder(encoder, input);
  const features = ENCODERS[kind].features.map((n) => {
    const t = tensors.get(n);
    if (!t) throw new Error(`the ${kind} encoder has no feature layer ${n}`);
    return t;
  });
  const widths = config.stageWidths;
  // Skips join the upsampled path by addition, not concatenation: a concat of two full-resolution maps cost
  // 54 ms of a 380 ms 512x512 prediction on wasm (tf.profile), and the conv after it twice the input channels.
  let x = b.relu(
    b.bn(b.conv(features[3], widths[3], 1, 1, 'dec_s16_reduce'), 'dec_s16_reduce_bn'),
    'dec_s16_reduce_relu',
  );
  for (let s = 2; s >= -1; s--) {
    const width = x.shape[3] as number;
    const up = tfl.layers.upSampling2d({ size: [2, 2], name: `dec${s + 1}_up` }).apply(x) as tfl.SymbolicTensor;
    // At full resolution the skip is a thin stem of the image itself: it brings back the exact edges.
    const skip =
      s >= 0
        ? b.relu(
            b.bn(b.conv(features[s], width, 1, 1, `dec${s + 1}_skip`), `dec${s + 1}_skip_bn`),
            `dec${s + 1}_skip_relu`,
          )
        : b.relu(b.bn(b.conv(input, width, 3, 1, 'stem_conv'), 'stem_bn'), 'stem_relu');
    const sum = tfl.layers.add({ name: `dec${s + 1}_merge` }).apply([up, skip]) as tfl.SymbolicTensor;
    x = b.block(sum, s >= 0 ? widths[s] : config.stemWidth, 1, `dec${s + 1}_block`, config.decoderDropout ?? 0);
  }
  const logits = tfl.layers
    .conv2d({
      filters: config.numClasses,
      kernelSize: 1,
      padding: 'same',
      useBias: true,
      kernelInitializer: tfl.initializers.glorotUniform({ seed: config.seed * 1000 + 999 }),
      name: 'head',
    })
    .apply(x) as tfl.SymbolicTensor;
  let outLogits = logits;
  if (config.contextHead) {
    // The context head (contextHead.ts): 1x1 read-outs of the stride-8 and stride-16 features (and of the
    // encoder's further stride-16 layer, if it names one), upsampled bilinearly and added to the decoder's
    // logits. It is fitted, not trained by gradient, so it is frozen here.
    const readOut = (f: tfl.SymbolicTensor, name: string, useBias: boolean): tfl.SymbolicTensor =>
      tfl.layers
        .conv2d({
          filters: config.numClasses,
          kernelSize: 1,
          padding: 'same',
          useBias,
          kernelInitializer: 'zeros',
          trainable: false,
          name,
        })
        .apply(f) as tfl.SymbolicTensor;
    let s16 = readOut(features[3], CONTEXT_LAYERS.s16, false);
    const extraName = ENCODERS[kind].contextExtra;
    if (extraName) {
      const extra = tensors.get(extraName);
      if (!extra) throw new Error(`the ${kind} encoder has no layer ${extraName}`);
      s16 = tfl.layers
        .add({ name: CONTEXT_LAYERS.sum16 })
        .apply([s16, readOut(extra, CONTEXT_LAYERS.s16b, false)]) as tfl.SymbolicTensor;
    }
    const up16 = new BilinearUpsample({ factor: 2, name: CONTEXT_LAYERS.up16 }).apply(s16) as tfl.SymbolicTensor;
    const sum = tfl.layers
      .add({ name: CONTEXT_LAYERS.sum })
      .apply([readOut(features[2], CONTEXT_LAYERS.s8, true), up16]) as tfl.SymbolicTensor;
    const context = new BilinearUpsample({ factor: 8, name: CONTEXT_LAYERS.up }).apply(sum) as tfl.SymbolicTensor;
    // The decoder's logits count where the read-out is unsure: times the square of g = 2 (1 - sum of p^2), twice
    // the Gini impurity of the read-out's probabilities (1 where two classes are even; at p = 0.9, g^2 = 0.13).
    // Ungated, a decoder fitted to a few images painted whole regions of new images (README, "The context head").
    const p = tfl.layers.softmax({ axis: -1, name: CONTEXT_LAYERS.probs }).apply(context) as tfl.SymbolicTensor;
    const p2 = tfl.layers.multiply({ name: CONTEXT_LAYERS.squared }).apply([p, p]) as tfl.SymbolicTensor;
    const gate = tfl.layers
      .conv2d({
        filters: config.numClasses,
        kernelSize: 1,
        padding: 'same',
        useBias: true,
        trainable: false,
        name: CONTEXT_LAYERS.gate,
        kernelInitializer: tfl.initializers.constant({ value: -2 }),
        biasInitializer: tfl.initializers.constant({ value: 2 }),
      })
      .apply(p2) as tfl.SymbolicTensor;
    const gate2 = tfl.layers.multiply({ name: CONTEXT_LAYERS.gateSquared }).apply([gate, gate]) as tfl.SymbolicTensor;
    const gated = tfl.layers.multiply({ name: CONTEXT_LAYERS.gated }).apply([logits, gate2]) as tfl.SymbolicTensor;
    outLogits = tfl.layers.add({ name: CONTEXT_LAYERS.logits }).apply([gated, context]) as tfl.SymbolicTensor;
  }
  const probs = tfl.layers.softmax({ axis: -1, name: 'probs' }).apply(outLogits) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: probs, name: `${kind}_unet` });
  setWeights();
  // Cold start: a zero head kernel and a bias towards background (p = 0.8), so an untrained decoder suggests
  // nothing rather than noise a person would have to erase (with a random head it suggested foreground on
  // 65-89% of composite-scene pixels). The kernel still gets gradients: features times the logits' error.
  const head = model.getLayer('head');
  const [kernel] = head.getWeights();
  head.setWeights([
    tf.zerosLike(kernel),
    tf.tensor1d(
      Array.from({ length: config.numClasses }, (_, i) => (i === 0 ? Math.log(4 * (config.numClasses - 1)) : 0)),
    ),
  ]);
  setEncoderTrainableStages(model, config.encoderTrainableStages ?? 0);
  return model;
}

/** Encoder stage (0 = nearest the input) of each encoder layer of a built network, by name. */
export function encoderStages(model: tfl.LayersModel): Map<string, number> {
  const names = new Set(encoderLayerNames(model));
  const stages = new Map<string, number>();
  const ends = Object.values(ENCODERS).find((e) => model.layers.some((l) => l.name === e.features[3]))?.features ?? [];
  let stage = 0;
  // model.layers is in topological order, so the encoder's layers come in the order they compute.
  for (const layer of model.layers) {
    if (!names.has(layer.name)) continue;
    stages.set(layer.name, stage);
    if (layer.name === ends[stage]) stage++;
  }
  return stages;
}

/**
 * Freezes the encoder except its `count` deepest stages (0 = all frozen; 4 = all trainable). A no-op on a
 * network without the pretrained encoder. Returns whether anything changed (the optimiser's variable list must then be rebuilt).
 */
export function setEncoderTrainableStages(model: tfl.LayersModel, count: number): boolean {
  let changed = false;
  for (const [name, stage] of encoderStages(model)) {
    const layer = model.getLayer(name);
    const trainable = stage >= 4 - count;
    if (layer.trainable !== trainable) {
      layer.trainable = trainable;
      changed = true;
    }
  }
  return changed;
}

/** The encoder's layers of a built network (for freezing checks): every layer named as in MobileNetV2 or the distilled ResNet. */
export function encoderLayerNames(model: tfl.LayersModel): string[] {
  return model.layers.map((l) => l.name).filter((n) => /^(Conv1|bn_Conv1|expanded_conv|block_\d+_|rn_)/.test(n));
}

/**
 * The layers through which the rest of a built network reads its pretrained encoder (its feature layers, and
 * the context head's further layer), or null for a network without one.
 */
export function encoderOutputNames(model: tfl.LayersModel): string[] | null {
  const has = (n: string): boolean => model.layers.some((l) => l.name === n);
  const spec = Object.values(ENCODERS).find((e) => e.features.every(has));
  if (!spec) return null;
  return spec.contextExtra && has(spec.contextExtra) ? [...spec.features, spec.contextExtra] : [...spec.features];
}
