import * as tf from '@tensorflow/tfjs-core';

// TF.js 4.22 gaps found when training on each backend (see the engine issue):
// - wasm has no Conv2DBackpropFilter kernel, so no conv net can train there;
// - wasm's Conv2DBackpropInput is correct but about 12x slower than a forward conv with the flipped filter;
// - cpu's ResizeNearestNeighborGrad steps through dy with the image's batch stride, so every
//   sample after the first in a batch gets a wrong upsampling gradient.
// Each replacement below is checked against another backend and against finite differences in tests.

type KernelArgs = Parameters<tf.KernelFunc>[0];

interface ConvAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dilations?: number | [number, number];
}

function convInfo(xShape: [number, number, number, number], filterShape: [number, number, number, number], attrs: ConvAttrs): tf.backend_util.Conv2DInfo {
  if (attrs.dataFormat !== 'NHWC') throw new Error(`maskloop's conv gradients support NHWC only, got ${attrs.dataFormat}`);
  return tf.backend_util.computeConv2DInfo(
    xShape, filterShape, attrs.strides, attrs.dilations ?? 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
}

/**
 * dW of a 2-D convolution as one matrix product: the im2col matrix of the padded input, transposed
 * explicitly (transposed matmul inputs are an order of magnitude slower on wasm), times dy.
 */
export function conv2DBackpropFilterByMatMul(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number], attrs: ConvAttrs): tf.Tensor4D {
  return tf.tidy(() => {
    const info = convInfo(x.shape, filterShape, attrs);
    if (info.dilationHeight !== 1 || info.dilationWidth !== 1) throw new Error('dilated convolutions are not supported by maskloop');
    const [kh, kw, cin, cout] = filterShape;
    const { top, bottom, left, right } = info.padInfo;
    const [n] = x.shape;
    const ho = info.outHeight;
    const wo = info.outWidth;
    const sh = info.strideHeight;
    const sw = info.strideWidth;
    const xPad = top || bottom || left || right ? tf.pad(x, [[0, 0], [top, Math.max(0, bottom)], [left, Math.max(0, right)], [0, 0]]) : x;
    const taps: tf.Tensor4D[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        taps.push(tf.stridedSlice(xPad, [0, i, j, 0], [n, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1, cin], [1, sh, sw, 1]) as tf.Tensor4D);
      }
    }
    const p = n * ho * wo;
    const cols = tf.reshape(taps.length === 1 ? taps[0] : tf.concat(taps, 3), [p, kh * kw * cin]);
    const dw = tf.matMul(tf.transpose(cols), tf.reshape(dy, [p, cout]));
    return tf.reshape(dw, [kh, kw, cin, cout]);
  });
}

/** dx of a stride-1 convolution as a forward convolution of dy with the flipped, transposed filter. */
export function conv2DBackpropInputByFlippedConv(dy: tf.Tensor4D, filter: tf.Tensor4D, inputShape: [number, number, number, number], attrs: ConvAttrs): tf.Tensor4D {
  return tf.tidy(() => {
    const info = convInfo(inputShape, filter.shape, attrs);
    const [kh, kw] = filter.shape;
    const { top, bottom, left, right } = info.padInfo;
    const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]);
    const pad: tf.backend_util.ExplicitPadding = [[0, 0], [kh - 1 - top, kh - 1 - bottom], [kw - 1 - left, kw - 1 - right], [0, 0]];
    return tf.conv2d(dy, flipped as tf.Tensor4D, 1, pad);
  });
}

function strideOf(attrs: ConvAttrs): [number, number] {
  return typeof attrs.strides === 'number' ? [attrs.strides, attrs.strides] : attrs.strides;
}

function dilationOf(attrs: ConvAttrs): [number, number] {
  const d = attrs.dilations ?? 1;
  return typeof d === 'number' ? [d, d] : d;
}

/** Scatter-add form of nearest-neighbour upsampling's gradient, with the forward kernel's exact index rule. */
export function resizeNearestNeighborGradValues(
  dy: Float32Array, dyShape: readonly number[], imageShape: readonly number[], alignCorners: boolean, halfPixelCenters: boolean,
): Float32Array {
  const [batch, inH, inW, depth] = imageShape;
  const [, outH, outW] = dyShape;
  const effIn = [alignCorners && outH > 1 ? inH - 1 : inH, alignCorners && outW > 1 ? inW - 1 : inW];
  const effOut = [alignCorners && outH > 1 ? outH - 1 : outH, alignCorners && outW > 1 ? outW - 1 : outW];
  const rowRatio = effIn[0] / effOut[0];
  const colRatio = effIn[1] / effOut[1];
  const source = (pos: number, ratio: number, size: number): number => {
    const frac = halfPixelCenters ? ratio * (pos + 0.5) : ratio * pos;
    let s = Math.min(size - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
    if (halfPixelCenters) s = Math.max(0, s);
    return s;
  };
  const srcCol = new Int32Array(outW);
  for (let c = 0; c < outW; c++) srcCol[c] = source(c, colRatio, inW);
  const out = new Float32Array(batch * inH * inW * depth);
  let k = 0;
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < outH; r++) {
      const rowBase = ((b * inH + source(r, rowRatio, inH)) * inW) * depth;
      for (let c = 0; c < outW; c++) {
        const base = rowBase + srcCol[c] * depth;
        for (let d = 0; d < depth; d++) out[base + d] += dy[k++];
      }
    }
  }
  return out;
}

let registered = false;

/** Registers maskloop's corrected and missing gradient kernels for the wasm and cpu backends (idempotent). */
export function registerGradientFixes(): void {
  if (registered) return;
  registered = true;

  const wasmBackpropFilter = (args: KernelArgs): tf.TensorInfo => {
    const { x, dy } = args.inputs as { x: tf.Tensor4D; dy: tf.Tensor4D };
    const attrs = args.attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
    return conv2DBackpropFilterByMatMul(x, dy, attrs.filterShape, attrs);
  };
  replaceKernel('Conv2DBackpropFilter', 'wasm', () => wasmBackpropFilter);

  replaceKernel('Conv2DBackpropInput', 'wasm', (original) => (args: KernelArgs) => {
    const { dy, filter } = args.inputs as { dy: tf.Tensor4D; filter: tf.Tensor4D };
    const attrs = args.attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
    const [sh, sw] = strideOf(attrs);
    const [dh, dw] = dilationOf(attrs);
    if (sh === 1 && sw === 1 && dh === 1 && dw === 1 && attrs.dataFormat === 'NHWC') {
      return conv2DBackpropInputByFlippedConv(dy, filter, attrs.inputShape, attrs);
    }
    if (!original) throw new Error('the wasm backend has no Conv2DBackpropInput kernel for strided convolutions');
    return original(args) as tf.TensorInfo;
  });

  replaceKernel('ResizeNearestNeighborGrad', 'cpu', () => (args: KernelArgs) => {
    const { images, dy } = args.inputs as { images: tf.TensorInfo; dy: tf.TensorInfo };
    const attrs = args.attrs as unknown as { alignCorners: boolean; halfPixelCenters: boolean };
    const backend = args.backend as tf.KernelBackend & { readSync(id: object): tf.backend_util.BackendValues; makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo };
    const dyValues = backend.readSync(dy.dataId) as Float32Array;
    const out = resizeNearestNeighborGradValues(dyValues, dy.shape, images.shape, attrs.alignCorners, attrs.halfPixelCenters);
    return backend.makeTensorInfo(images.shape, 'float32', out);
  });
}

function replaceKernel(name: string, backendName: string, make: (original: tf.KernelFunc | undefined) => tf.KernelFunc): void {
  const existing = tf.getKernel(name, backendName);
  if (existing) tf.unregisterKernel(name, backendName);
  tf.registerKernel({ kernelName: name, backendName, kernelFunc: make(existing?.kernelFunc) });
}
