import * as tfl from '@tensorflow/tfjs-layers';
import type { NetworkConfig, NetworkOptions } from '../../protocol/modelTypes';

export type { NetworkConfig, NetworkOptions };

export const DEFAULT_NETWORK: Omit<NetworkConfig, 'numClasses'> = {
  stemWidth: 8,
  stageWidths: [16, 32, 64, 96],
  blocksPerStage: 1,
  residual: true,
  bnMomentum: 0.9,
  seed: 1,
};

/** Total downsampling factor: inputs are padded to a multiple of it. */
export function networkStride(config: Pick<NetworkConfig, 'stageWidths'>): number {
  return 2 ** config.stageWidths.length;
}

export class Builder {
  private seedCounter: number;
  constructor(private readonly config: NetworkConfig) {
    this.seedCounter = config.seed * 1000;
  }

  private init(): ReturnType<typeof tfl.initializers.heNormal> {
    return tfl.initializers.heNormal({ seed: this.seedCounter++ });
  }

  conv(x: tfl.SymbolicTensor, filters: number, kernel: number, stride: number, name: string): tfl.SymbolicTensor {
    return tfl.layers
      .conv2d({
        filters,
        kernelSize: kernel,
        strides: stride,
        padding: 'same',
        useBias: false,
        kernelInitializer: this.init(),
        name,
      })
      .apply(x) as tfl.SymbolicTensor;
  }

  bn(x: tfl.SymbolicTensor, name: string): tfl.SymbolicTensor {
    return tfl.layers
      .batchNormalization({ momentum: this.config.bnMomentum, epsilon: 1e-3, name })
      .apply(x) as tfl.SymbolicTensor;
  }

  relu(x: tfl.SymbolicTensor, name: string): tfl.SymbolicTensor {
    return tfl.layers.reLU({ name }).apply(x) as tfl.SymbolicTensor;
  }

  /**
   * Residual basic block: conv3x3-BN-ReLU-conv3x3-BN, plus the identity (or a 1x1 projection with BN
   * when channels or stride change), then ReLU: y = relu(F(x) + x).
   */
  block(x: tfl.SymbolicTensor, filters: number, stride: number, name: string, dropout = 0): tfl.SymbolicTensor {
    const inChannels = x.shape[3] as number;
    let f = this.conv(x, filters, 3, stride, `${name}_conv1`);
    f = this.relu(this.bn(f, `${name}_bn1`), `${name}_relu1`);
    if (dropout > 0) {
      // Spatial dropout: one draw per sample and channel (noise shape [batch, 1, 1, channels]), as Keras's
      // SpatialDropout2D, which tfjs-layers lacks; an identity at inference.
      const noiseShape = [null, 1, 1, null] as unknown as number[];
      f = tfl.layers
        .dropout({ rate: dropout, noiseShape, seed: this.seedCounter++, name: `${name}_dropout` })
        .apply(f) as tfl.SymbolicTensor;
    }
    f = this.conv(f, filters, 3, 1, `${name}_conv2`);
    f = this.bn(f, `${name}_bn2`);
    if (!this.config.residual) return this.relu(f, `${name}_out`);
    let shortcut = x;
    if (stride !== 1 || inChannels !== filters) {
      shortcut = this.bn(this.conv(x, filters, 1, stride, `${name}_proj`), `${name}_proj_bn`);
    }
    const sum = tfl.layers.add({ name: `${name}_add` }).apply([f, shortcut]) as tfl.SymbolicTensor;
    return this.relu(sum, `${name}_out`);
  }
}

/**
 * Builds the residual U-Net: a full-resolution stem, encoder stages of residual basic blocks (the first
 * of each with stride 2), a decoder that upsamples, concatenates the matching encoder skip and refines
 * with a residual block, and a 1x1 softmax head. Height and width are free (multiples of the stride).
 */
export function buildResUNet(config: NetworkConfig): tfl.LayersModel {
  if (config.numClasses < 2)
    throw new Error(`a segmentation network needs at least 2 classes, got ${config.numClasses}`);
  if (config.stageWidths.length < 1) throw new Error('the network needs at least one encoder stage');
  const b = new Builder(config);
  const input = tfl.input({ shape: [null, null, 3], name: 'image' });
  let x = b.relu(b.bn(b.conv(input, config.stemWidth, 3, 1, 'stem_conv'), 'stem_bn'), 'stem_relu');
  x = b.block(x, config.stemWidth, 1, 'stem_block');
  const skips: tfl.SymbolicTensor[] = [x];
  config.stageWidths.forEach((width, s) => {
    for (let k = 0; k < config.blocksPerStage; k++) x = b.block(x, width, k === 0 ? 2 : 1, `enc${s + 1}_b${k + 1}`);
    skips.push(x);
  });
  skips.pop();
  for (let s = config.stageWidths.length - 1; s >= 0; s--) {
    const skip = skips[s];
    const width = s === 0 ? config.stemWidth : config.stageWidths[s - 1];
    const up = tfl.layers.upSampling2d({ size: [2, 2], name: `dec${s + 1}_up` }).apply(x) as tfl.SymbolicTensor;
    const cat = tfl.layers.concatenate({ axis: -1, name: `dec${s + 1}_cat` }).apply([up, skip]) as tfl.SymbolicTensor;
    x = b.block(cat, width, 1, `dec${s + 1}_block`, config.decoderDropout ?? 0);
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
  const probs = tfl.layers.softmax({ axis: -1, name: 'probs' }).apply(logits) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: probs, name: config.residual ? 'resunet' : 'plainunet' });
}

/** Count of trainable and non-trainable parameters. */
export function countParameters(model: tfl.LayersModel): { trainable: number; total: number } {
  // A frozen layer's variables keep trainable = true: the model's trainableWeights is what training uses.
  const size = (w: tfl.LayerVariable): number => w.shape.reduce((a: number, d) => a * (d ?? 1), 1);
  const total = model.weights.reduce((n, w) => n + size(w), 0);
  const trainable = model.trainableWeights.reduce((n, w) => n + size(w), 0);
  return { trainable, total };
}

/** Multiply-add FLOPs (2 per MAC) of the convolutions for an HxW input (only of the layers `count` accepts). */
export function estimateFlops(
  model: tfl.LayersModel,
  height: number,
  width: number,
  count: (layer: tfl.layers.Layer) => boolean = () => true,
): number {
  let flops = 0;
  // Spatial size of every symbolic tensor, following the stride chain from the input.
  const sizes = new Map<string, [number, number]>();
  for (const layer of model.layers) {
    const inputs = ([] as tfl.SymbolicTensor[]).concat(layer.input as tfl.SymbolicTensor | tfl.SymbolicTensor[]);
    const inSize = sizes.get(inputs[0].name) ?? [height, width];
    let outSize = inSize;
    const cls = layer.getClassName();
    if (cls === 'Conv2D' || cls === 'DepthwiseConv2D') {
      const cfg = layer.getConfig() as { strides: number[]; kernelSize: number[]; filters?: number };
      outSize = [Math.ceil(inSize[0] / cfg.strides[0]), Math.ceil(inSize[1] / cfg.strides[1])];
      const cin = inputs[0].shape[3] as number;
      // A depthwise convolution has one filter per input channel.
      if (count(layer))
        flops += 2 * outSize[0] * outSize[1] * cfg.kernelSize[0] * cfg.kernelSize[1] * cin * (cfg.filters ?? 1);
    } else if (cls === 'UpSampling2D') {
      outSize = [inSize[0] * 2, inSize[1] * 2];
    }
    sizes.set((layer.output as tfl.SymbolicTensor).name, outSize);
  }
  return flops;
}
