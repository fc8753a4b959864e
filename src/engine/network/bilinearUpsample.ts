// Bilinear upsampling with half-pixel centres, as a Keras layer the networks (and their ONNX export) use.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/**
 * Bilinear upsampling by an integer factor with half-pixel centres (pixel centres map to pixel centres, as
 * ONNX's 'half_pixel' Resize does). Keras's UpSampling2D 'bilinear' maps pixel corners, which would shift an
 * 8x upsampled map by 3.5 pixels toward the top-left.
 */
export class BilinearUpsample extends tfl.layers.Layer {
  static className = 'MaskloopBilinearUpsample';
  readonly factor: number;

  constructor(args: { factor: number; name?: string; trainable?: boolean }) {
    super(args);
    this.factor = args.factor;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const up = (d: number | null): number | null => (d === null ? null : d * this.factor);
    return [s[0], up(s[1]), up(s[2]), s[3]];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return upsampleBilinear(x, this.factor);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), factor: this.factor };
  }
}
tf.serialization.registerClass(BilinearUpsample);

/** Half-pixel-centred bilinear upsampling of an NHWC tensor by an integer factor. */
export function upsampleBilinear(x: tf.Tensor4D, factor: number): tf.Tensor4D {
  return tf.image.resizeBilinear(x, [x.shape[1] * factor, x.shape[2] * factor], false, true);
}
