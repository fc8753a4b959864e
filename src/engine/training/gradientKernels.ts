import * as tf from '@tensorflow/tfjs-core';

// TF.js 4.22 gaps found when training on each backend (see the engine issue):
// - wasm has no Conv2DBackpropFilter kernel, so no conv net can train there;
// - wasm's Conv2DBackpropInput is correct but about 12x slower than a forward conv with the flipped filter;
// - wasm has no depthwise convolution gradients (a pretrained MobileNetV2 encoder could not be unfrozen);
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

function convInfo(
  xShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  attrs: ConvAttrs,
): tf.backend_util.Conv2DInfo {
  if (attrs.dataFormat !== 'NHWC')
    throw new Error(`maskloop's conv gradients support NHWC only, got ${attrs.dataFormat}`);
  return tf.backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/**
 * The transposed im2col matrix of an NHWC input, [kh*kw*cin, n*ho*wo], built in one pass in JavaScript with
 * zeros for padding. Row (i, j, c) matches the filter's [kh, kw, cin] order. Built directly in this layout,
 * it needs no transpose, and it replaces kh*kw strided slices and a concat, which cost 0.84 s of a 1.8 s
 * training step on wasm (measured with tf.profile, 2x128x128 crops, default network).
 */
export function im2colTransposed(
  x: Float32Array,
  shape: readonly [number, number, number, number],
  kh: number,
  kw: number,
  sh: number,
  sw: number,
  top: number,
  left: number,
  ho: number,
  wo: number,
): Float32Array {
  const [n, h, w, cin] = shape;
  const p = n * ho * wo;
  const out = new Float32Array(kh * kw * cin * p);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      // Output columns whose input column is inside the image (the rest stay zero: padding).
      const oxStart = Math.max(0, Math.ceil((left - j) / sw));
      const oxEnd = Math.min(wo, Math.floor((w - 1 + left - j) / sw) + 1);
      for (let c = 0; c < cin; c++) {
        let q = ((i * kw + j) * cin + c) * p;
        for (let b = 0; b < n; b++) {
          for (let oy = 0; oy < ho; oy++, q += wo) {
            const iy = oy * sh + i - top;
            if (iy < 0 || iy >= h) continue;
            const rowBase = (b * h + iy) * w;
            for (let ox = oxStart; ox < oxEnd; ox++) out[q + ox] = x[(rowBase + ox * sw + j - left) * cin + c];
          }
        }
      }
    }
  }
  return out;
}

/** dW of a 2-D convolution as one matrix product: the transposed im2col matrix of the input times dy. */
export function conv2DBackpropFilterByMatMul(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  attrs: ConvAttrs,
): tf.Tensor4D {
  const info = convInfo(x.shape, filterShape, attrs);
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1)
    throw new Error('dilated convolutions are not supported by maskloop');
  const [kh, kw, cin, cout] = filterShape;
  const { top, left } = info.padInfo;
  if (kh === 1 && kw === 1 && info.strideHeight === 1 && info.strideWidth === 1 && top === 0 && left === 0) {
    // A 1x1 convolution's dW is dy^T x itself, no im2col: 5x faster than the im2col product on wasm for the
    // decoder's 1x1 skips (2x128x128x96 -> 16: 25 ms -> 5 ms), whose matMul with transposeA is slower still.
    return tf.tidy(() => {
      const p = x.shape[0] * x.shape[1] * x.shape[2];
      const dyT = tf.transpose(tf.reshape(dy, [p, cout])) as tf.Tensor2D;
      return tf.reshape(tf.transpose(tf.matMul(dyT, tf.reshape(x, [p, cin]) as tf.Tensor2D)), filterShape);
    });
  }
  const xValues = x.dataSync() as Float32Array;
  const colsT = im2colTransposed(
    xValues,
    x.shape,
    kh,
    kw,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
    info.outHeight,
    info.outWidth,
  );
  return tf.tidy(() => {
    const p = x.shape[0] * info.outHeight * info.outWidth;
    const dw = tf.matMul(tf.tensor2d(colsT, [kh * kw * cin, p]), tf.reshape(dy, [p, cout]));
    return tf.reshape(dw, [kh, kw, cin, cout]);
  });
}

/** dx of a stride-1 convolution as a forward convolution of dy with the flipped, transposed filter. */
export function conv2DBackpropInputByFlippedConv(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: [number, number, number, number],
  attrs: ConvAttrs,
): tf.Tensor4D {
  return tf.tidy(() => {
    const info = convInfo(inputShape, filter.shape, attrs);
    const [kh, kw] = filter.shape;
    const { top, bottom, left, right } = info.padInfo;
    const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]);
    const pad: tf.backend_util.ExplicitPadding = [
      [0, 0],
      [kh - 1 - top, kh - 1 - bottom],
      [kw - 1 - left, kw - 1 - right],
      [0, 0],
    ];
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
  dy: Float32Array,
  dyShape: readonly number[],
  imageShape: readonly number[],
  alignCorners: boolean,
  halfPixelCenters: boolean,
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
      const rowBase = (b * inH + source(r, rowRatio, inH)) * inW * depth;
      for (let c = 0; c < outW; c++) {
        const base = rowBase + srcCol[c] * depth;
        for (let d = 0; d < depth; d++) out[base + d] += dy[k++];
      }
    }
  }
  return out;
}

/**
 * FusedBatchNorm's gradient with broadcasting where tfjs-core tiles: its `tile` of 1/sqrt(variance) to the
 * whole activation cost 0.37 s of a 1.1 s training step on wasm. Same formulas, same results.
 */
export const fusedBatchNormGrad: tf.GradConfig = {
  kernelName: 'FusedBatchNorm',
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const g = dy as tf.Tensor;
    const [x, mean, variance, scale] = saved;
    const eps = (attrs as unknown as { varianceEpsilon: number }).varianceEpsilon;
    const scaleValue = scale ?? tf.scalar(1);
    const axes = tf.backend_util.getReductionAxes(mean.shape, x.shape);
    const reduce = (t: tf.Tensor): tf.Tensor => (mean.rank === 1 ? tf.sum(t, axes) : t);
    const xMinusMean = tf.sub(x, mean);
    const dyTimesScale = tf.mul(g, scaleValue);
    const inv = tf.rsqrt(tf.add(variance, tf.scalar(eps)));
    const minusHalfRCube = tf.mul(tf.mul(tf.mul(inv, inv), inv), tf.scalar(-0.5));
    return {
      x: () => tf.reshape(tf.mul(tf.mul(g, inv), scaleValue), x.shape),
      mean: () => tf.reshape(reduce(tf.mul(tf.mul(inv, tf.scalar(-1)), dyTimesScale)), mean.shape),
      variance: () => tf.reshape(reduce(tf.mul(tf.mul(minusHalfRCube, xMinusMean), dyTimesScale)), mean.shape),
      scale: () => tf.reshape(reduce(tf.mul(g, tf.mul(xMinusMean, inv))), mean.shape),
      offset: () => tf.reshape(reduce(g), mean.shape),
    };
  },
};

/**
 * Depthwise convolution gradients (channel multiplier 1), NHWC, in one JavaScript pass each: the wasm backend
 * has neither DepthwiseConv2dNativeBackpropFilter nor ...BackpropInput, so a pretrained MobileNetV2 encoder
 * could not be unfrozen there. dW[i, j, c] = sum over n, y, x of dy[n, y, x, c] * x[n, y*s + i*d - pt, x*s + j*d - pl, c];
 * dx gathers the same products the other way.
 */
export function depthwiseGradValues(
  xv: Float32Array | null,
  wv: Float32Array | null,
  dyv: Float32Array,
  info: tf.backend_util.Conv2DInfo,
  want: 'filter' | 'input',
): Float32Array {
  const {
    batchSize: n,
    inHeight: h,
    inWidth: w,
    inChannels: c,
    outHeight: ho,
    outWidth: wo,
    strideHeight: sh,
    strideWidth: sw,
    dilationHeight: dh,
    dilationWidth: dw,
    filterHeight: kh,
    filterWidth: kw,
  } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const out = new Float32Array(want === 'filter' ? kh * kw * c : n * h * w * c);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < ho; y++) {
      for (let i = 0; i < kh; i++) {
        const iy = y * sh + i * dh - pt;
        if (iy < 0 || iy >= h) continue;
        for (let x = 0; x < wo; x++) {
          const dyBase = ((b * ho + y) * wo + x) * c;
          for (let j = 0; j < kw; j++) {
            const ix = x * sw + j * dw - pl;
            if (ix < 0 || ix >= w) continue;
            const xBase = ((b * h + iy) * w + ix) * c;
            const wBase = (i * kw + j) * c;
            if (want === 'filter') {
              const xs = xv as Float32Array;
              for (let k = 0; k < c; k++) out[wBase + k] += dyv[dyBase + k] * xs[xBase + k];
            } else {
              const ws = wv as Float32Array;
              for (let k = 0; k < c; k++) out[xBase + k] += dyv[dyBase + k] * ws[wBase + k];
            }
          }
        }
      }
    }
  }
  return out;
}

const fixed = new Set<string>();

/**
 * Registers maskloop's corrected and missing kernels for a TF.js backend, once per backend: call it after the
 * backend's package has loaded (loading it registers its own kernels, which would replace these). Every backend
 * gets the batch norm gradient and the cpu backend's fix (the GPU backends hand small tensors to it); wasm its
 * convolution gradients; webgpu its AddN.
 */
export function registerGradientFixes(backendName: string): void {
  if (fixed.size === 0) {
    // Replaces tfjs-core's gradient for every backend (it only changes how, not what, is computed).
    const quiet = console.warn;
    console.warn = () => undefined; // registerGradient warns that it overrides; that is the point
    try {
      tf.registerGradient(fusedBatchNormGrad);
    } finally {
      console.warn = quiet;
    }
    registerCpuFixes();
  }
  if (fixed.has(backendName)) return;
  fixed.add(backendName);
  if (backendName === 'wasm') registerWasmFixes();
  if (backendName === 'webgpu') registerWebGpuFixes();
}

/**
 * WebGPU's AddN binds every input as a storage buffer, and WebGPU allows 8 per shader stage unless a device asks
 * for more: with 8 inputs or more its pipeline is invalid and the sum silently comes out wrong (the L2 decay
 * over a network's kernels adds dozens). Sums of more than MAX_WEBGPU_ADDN inputs are added in groups.
 */
export const MAX_WEBGPU_ADDN = 6;

function registerWebGpuFixes(): void {
  replaceKernel('AddN', 'webgpu', (original) => (args: KernelArgs) => {
    const inputs = args.inputs as unknown as tf.Tensor[];
    if (!original) throw new Error('the webgpu backend has no AddN kernel');
    if (inputs.length <= MAX_WEBGPU_ADDN) return original(args) as tf.TensorInfo;
    return tf.tidy(() => {
      let level: tf.Tensor[] = inputs;
      while (level.length > 1) {
        const next: tf.Tensor[] = [];
        for (let i = 0; i < level.length; i += MAX_WEBGPU_ADDN) {
          const group = level.slice(i, i + MAX_WEBGPU_ADDN);
          next.push(group.length === 1 ? group[0] : tf.addN(group));
        }
        level = next;
      }
      return level[0];
    });
  });
}

function registerWasmFixes(): void {
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

  for (const want of ['filter', 'input'] as const) {
    const name = want === 'filter' ? 'DepthwiseConv2dNativeBackpropFilter' : 'DepthwiseConv2dNativeBackpropInput';
    if (tf.getKernel(name, 'wasm')) continue;
    tf.registerKernel({
      kernelName: name,
      backendName: 'wasm',
      kernelFunc: (args: KernelArgs) => {
        const inputs = args.inputs as { x?: tf.TensorInfo; filter?: tf.TensorInfo; dy: tf.TensorInfo };
        const attrs = args.attrs as unknown as ConvAttrs & {
          filterShape?: [number, number, number, number];
          inputShape?: [number, number, number, number];
        };
        const backend = args.backend as tf.KernelBackend & { readSync(id: object): tf.backend_util.BackendValues };
        const xShape =
          want === 'filter'
            ? ((inputs.x as tf.TensorInfo).shape as [number, number, number, number])
            : (attrs.inputShape as [number, number, number, number]);
        const fShape =
          want === 'filter'
            ? (attrs.filterShape as [number, number, number, number])
            : ((inputs.filter as tf.TensorInfo).shape as [number, number, number, number]);
        if (fShape[3] !== 1)
          throw new Error(`maskloop's depthwise gradients support a channel multiplier of 1, got ${fShape[3]}`);
        if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC')
          throw new Error("maskloop's depthwise gradients support NHWC only");
        const info = tf.backend_util.computeConv2DInfo(
          xShape,
          fShape,
          attrs.strides,
          attrs.dilations ?? 1,
          attrs.pad,
          attrs.dimRoundingMode,
          true,
          'channelsLast',
        );
        const dyv = backend.readSync(inputs.dy.dataId) as Float32Array;
        const values =
          want === 'filter'
            ? depthwiseGradValues(
                backend.readSync((inputs.x as tf.TensorInfo).dataId) as Float32Array,
                null,
                dyv,
                info,
                'filter',
              )
            : depthwiseGradValues(
                null,
                backend.readSync((inputs.filter as tf.TensorInfo).dataId) as Float32Array,
                dyv,
                info,
                'input',
              );
        // A tensor made here is what the other registered wasm kernels return too (wasm has no makeTensorInfo).
        return tf.tensor4d(values, want === 'filter' ? fShape : xShape);
      },
    });
  }
}

function registerCpuFixes(): void {
  replaceKernel('ResizeNearestNeighborGrad', 'cpu', () => (args: KernelArgs) => {
    const { images, dy } = args.inputs as { images: tf.TensorInfo; dy: tf.TensorInfo };
    const attrs = args.attrs as unknown as { alignCorners: boolean; halfPixelCenters: boolean };
    const backend = args.backend as tf.KernelBackend & {
      readSync(id: object): tf.backend_util.BackendValues;
      makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
    };
    const dyValues = backend.readSync(dy.dataId) as Float32Array;
    const out = resizeNearestNeighborGradValues(
      dyValues,
      dy.shape,
      images.shape,
      attrs.alignCorners,
      attrs.halfPixelCenters,
    );
    return backend.makeTensorInfo(images.shape, 'float32', out);
  });
}

function replaceKernel(
  name: string,
  backendName: string,
  make: (original: tf.KernelFunc | undefined) => tf.KernelFunc,
): void {
  const existing = tf.getKernel(name, backendName);
  if (existing) tf.unregisterKernel(name, backendName);
  tf.registerKernel({ kernelName: name, backendName, kernelFunc: make(existing?.kernelFunc) });
}
