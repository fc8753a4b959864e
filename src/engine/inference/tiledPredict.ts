import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { cachedFoldedForward } from './foldedInference';
import { onnxWindowForward, type WindowForward } from './onnxInference';
import { splitWindowForward, type EncoderCache } from './splitForward';
import { normalizePixel } from '../network/networkInput';
import type { GuidedFilterSettings } from './guidedFilter';
import { refineProbabilities } from './guidedFilterOnnx';
import type { RgbImage } from '../../masks/maskImage';
import type { EncoderKind } from '../../protocol/encoderKind';
import type { PixelHeadWeights } from '../../protocol/modelTypes';
import { runPixelHead } from './pixelHeadOnnx';

export interface TileOptions {
  /** Stride the network needs: tiles start on multiples of it and are padded to it. */
  stride: number;
  /** Images up to this size on both sides are predicted whole; larger ones in tiles of this size. */
  tileSize: number;
  /** Overlap between neighbouring tiles. */
  overlap: number;
  /** Pixels at each inner tile edge given zero weight (their context is cut off by the tile). */
  margin: number;
  /**
   * Tile size when onnxruntime runs the model: it has the memory and the threads for larger tiles, and fewer
   * tiles recompute fewer overlaps (a 4096x4096 pre-label: 11.6 s in 512 px tiles, 7.7 s in 1536 px tiles here).
   */
  onnxTileSize?: number;
  /**
   * Average each window's probabilities with those of its mirror image (flipped left-right, predicted, flipped
   * back): twice the compute, fewer corrections (README, "Mirror averaging"). 'auto': for images of at most
   * AUTO_MAX_PIXELS, so a very large image keeps its single-pass time.
   */
  mirror?: boolean | 'auto';
  /**
   * Refine the image's blended probabilities with the colour guided filter (`guided`) before the argmax, so a
   * suggestion predicted at the network's coarse strides follows the image's colour edges (README, "Edge
   * refinement"). The whole image's probabilities are then held at once. 'auto': for images of at most
   * AUTO_MAX_PIXELS, as the mirror averaging.
   */
  refine?: boolean | 'auto';
  /** The guided filter's settings (default DEFAULT_GUIDED). */
  guided?: GuidedFilterSettings;
  /**
   * The model's pixel head (pixelHead.ts), run on the (refined) probabilities of images of at most
   * PIXEL_HEAD_MAX_PIXELS; larger images keep the network's suggestion.
   */
  pixelHead?: PixelHeadWeights;
}

/** The guided filter's defaults. */
export const DEFAULT_GUIDED: GuidedFilterSettings = { radius: 24, eps: 0.001, subsample: 4 };

/** Up to this many pixels (2048 x 2048), 'auto' mirror-averages and refines a prediction. */
export const AUTO_MAX_PIXELS = 2048 * 2048;

export const DEFAULT_TILES: Omit<TileOptions, 'stride'> = {
  tileSize: 512,
  overlap: 128,
  margin: 32,
  onnxTileSize: 1536,
  mirror: 'auto',
  refine: 'auto',
  guided: DEFAULT_GUIDED,
};

/** Whether a prediction of a width x height image is mirror-averaged under these options. */
export function mirrorsImage(options: Pick<TileOptions, 'mirror'>, width: number, height: number): boolean {
  return options.mirror === true || (options.mirror === 'auto' && width * height <= AUTO_MAX_PIXELS);
}

/**
 * A model's default `refine`: 'auto' under a pretrained encoder; off from scratch, whose suggestions it made
 * worse in the composite loop (README, "Edge refinement").
 */
export function defaultRefine(encoder: EncoderKind): TileOptions['refine'] {
  return encoder === 'scratch' ? false : 'auto';
}

/** Whether a prediction of a width x height image is refined by the guided filter under these options. */
export function refinesImage(options: Pick<TileOptions, 'refine'>, width: number, height: number): boolean {
  return options.refine === true || (options.refine === 'auto' && width * height <= AUTO_MAX_PIXELS);
}

export interface Prediction {
  width: number;
  height: number;
  /** Class index per pixel. */
  classMap: Uint8Array;
  /** Probability of the chosen class, scaled to 0-255. */
  confidence: Uint8Array;
  /** Every class's probability (height x width x classes), when asked for (PredictHooks.keepProbabilities). */
  probabilities?: Float32Array;
}

function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let m = ((i % period) + period) % period;
  if (m >= n) m = period - m;
  return m;
}

/** Normalised input of a window of the image, reflect-padded on the right/bottom to a multiple of the stride. */
function windowInput(
  image: RgbImage,
  x0: number,
  y0: number,
  w: number,
  h: number,
  stride: number,
): { x: Float32Array; ph: number; pw: number } {
  const pw = Math.ceil(w / stride) * stride;
  const ph = Math.ceil(h / stride) * stride;
  const out = new Float32Array(pw * ph * 3);
  for (let y = 0; y < ph; y++) {
    // Reflect at the image border (not the window's), so a tile at the edge pads as the whole image does.
    const sy = y0 + y < image.height ? y0 + y : reflect(y0 + y, image.height);
    for (let x = 0; x < pw; x++) {
      const sx = x0 + x < image.width ? x0 + x : reflect(x0 + x, image.width);
      const si = (sy * image.width + sx) * 3;
      const o = (y * pw + x) * 3;
      out[o] = normalizePixel(image.data[si]);
      out[o + 1] = normalizePixel(image.data[si + 1]);
      out[o + 2] = normalizePixel(image.data[si + 2]);
    }
  }
  return { x: out, ph, pw };
}

/** A TF.js forward as a window forward. */
function tfWindowForward(forward: (x: tf.Tensor4D) => tf.Tensor4D): WindowForward {
  return async (x, height, width) => {
    const probs = tf.tidy(() => forward(tf.tensor4d(x, [1, height, width, 3])));
    try {
      return (await probs.data()) as Float32Array;
    } finally {
      probs.dispose();
    }
  };
}

/** Mirrors an interleaved [h, w, c] array left-right. */
export function mirrorColumns(a: Float32Array, height: number, width: number, channels: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const src = (row + x) * channels;
      const dst = (row + width - 1 - x) * channels;
      for (let c = 0; c < channels; c++) out[dst + c] = a[src + c];
    }
  }
  return out;
}

/** A window forward that averages the probabilities of the window and of its mirror image (mirrored back). */
export function mirrorAveraged(forward: WindowForward): WindowForward {
  return async (x, height, width, key) => {
    const direct = await forward(x, height, width, key);
    // The mirror image goes without a key: what a forward keeps of windows is kept of the direct view only
    // (the fine-tune's epoch validations predict without the mirror image; a mirrored view comes twice).
    const mirrored = await forward(mirrorColumns(x, height, width, 3), height, width);
    // Column x of the mirror image's probabilities is column width - 1 - x of the window's: averaged in place.
    const k = direct.length / (height * width);
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let x = 0; x < width; x++) {
        const d = (row + x) * k;
        const m = (row + width - 1 - x) * k;
        for (let c = 0; c < k; c++) direct[d + c] = (direct[d + c] + mirrored[m + c]) / 2;
      }
    }
    return direct;
  };
}

/** Probabilities [h, w, K] of one window. */
async function predictWindow(
  forward: WindowForward,
  image: RgbImage,
  x0: number,
  y0: number,
  w: number,
  h: number,
  stride: number,
  cache: EncoderCache | null,
): Promise<{ probs: Float32Array; pw: number }> {
  const { x, ph, pw } = windowInput(image, x0, y0, w, h, stride);
  return { probs: await forward(x, ph, pw, cache?.windowKey(image, x0, y0, w, h)), pw };
}

/** Tile origins along one axis: multiples of the stride, the last one flush with the end. */
export function tileOrigins(size: number, tile: number, step: number, stride: number): number[] {
  if (size <= tile) return [0];
  const last = Math.floor((size - tile) / stride) * stride;
  const out: number[] = [];
  for (let o = 0; o < last; o += step) out.push(o);
  out.push(last);
  return out;
}

/** Blend weight at distance d (pixels) from an inner tile edge: zero in the margin, then a linear ramp. */
function ramp(d: number, margin: number, overlap: number): number {
  if (d < margin) return 0;
  const span = Math.max(1, overlap - 2 * margin);
  return Math.min(1, (d - margin + 1) / span);
}

export interface PredictHooks {
  /** Called after each tile; throwing aborts the prediction. */
  onTile?: (done: number, total: number) => void;
  /** Return every class's probability too (the pixel head's fit reads them). */
  keepProbabilities?: boolean;
  /**
   * Keep the frozen encoder's feature maps of this image's windows here, and read them when they are there
   * (splitForward.ts): for images predicted again and again with new decoder weights (a fine-tune's
   * validation images). Without onnxruntime, or without a frozen pretrained encoder, it is not used.
   */
  encoderCache?: EncoderCache;
}

/**
 * Up to this many pixels (1024 x 1024) a prediction runs the pixel head. With onnxruntime installed its
 * perceptron and its features' smoothings run through it (pixelHeadOnnx.ts, pixelFeaturesOnnx.ts): a 512x512
 * pre-label takes about 0.5 s with it here (0.25 s without), 1024x1024 1.3-1.6 s; larger images keep the network's
 * suggestion and their time (the whole image's probabilities are held while it runs).
 */
export const PIXEL_HEAD_MAX_PIXELS = 1024 * 1024;

/** Whether a prediction of a width x height image runs the pixel head under these options. */
export function runsPixelHead(options: Pick<TileOptions, 'pixelHead'>, width: number, height: number): boolean {
  return options.pixelHead !== undefined && width * height <= PIXEL_HEAD_MAX_PIXELS;
}

/**
 * Predicts a class map for an image of any size. Small images go through the network whole; large ones
 * in overlapping tiles whose probabilities are blended with weights that vanish at inner tile edges, so
 * no seams show. Only one row of tiles is held at a time, so memory stays bounded for huge images; with the
 * guided filter (`refine`), the whole image's probabilities are held and refined at the end.
 */
export async function predictImage(
  model: tfl.LayersModel,
  image: RgbImage,
  options: TileOptions,
  hooks: PredictHooks = {},
): Promise<Prediction> {
  // onnxruntime when installed (checked against TF.js for these weights); else TF.js with batch norm folded
  // into the convolutions (same outputs to float rounding, faster); else the layers model as is.
  const split = hooks.encoderCache ? await splitWindowForward(model, hooks.encoderCache) : null;
  const onnx = split ?? (await onnxWindowForward(model));
  const single =
    onnx ?? tfWindowForward((await cachedFoldedForward(model)) ?? ((x) => model.predict(x) as tf.Tensor4D));
  const forward = mirrorsImage(options, image.width, image.height) ? mirrorAveraged(single) : single;
  const tiles = { ...options, tileSize: effectiveTileSize(options, onnx !== null) };
  const { stride, tileSize, overlap, margin } = tiles;
  if (tileSize % stride !== 0 || overlap % stride !== 0)
    throw new Error(`tile size ${tileSize} and overlap ${overlap} must be multiples of the network stride ${stride}`);
  if (overlap < 2 * margin || overlap >= tileSize)
    throw new Error(
      `tile overlap ${overlap} must be at least twice the margin ${margin} and less than the tile size ${tileSize}`,
    );
  return predictTiles(
    forward,
    image,
    tiles,
    hooks,
    refinesImage(options, image.width, image.height) ? (options.guided ?? DEFAULT_GUIDED) : null,
    split ? (hooks.encoderCache ?? null) : null,
  );
}

/** The tile size a prediction uses: the onnxruntime one when that runtime runs it. */
export function effectiveTileSize(options: TileOptions, onnx: boolean): number {
  return onnx && options.onnxTileSize ? options.onnxTileSize : options.tileSize;
}

/**
 * Each pixel's class of highest probability (the first on a tie) and that probability scaled to 0-255, of
 * probabilities [pixels, k].
 */
function argmaxInto(probs: Float32Array, k: number, classMap: Uint8Array, confidence: Uint8Array): void {
  for (let i = 0, o = 0; i < classMap.length; i++, o += k) {
    let best = 0;
    let bestP = probs[o];
    for (let c = 1; c < k; c++) {
      const p = probs[o + c];
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    classMap[i] = best;
    confidence[i] = Math.round(255 * Math.min(1, bestP));
  }
}

async function predictTiles(
  forward: WindowForward,
  image: RgbImage,
  options: TileOptions,
  hooks: PredictHooks,
  guided: GuidedFilterSettings | null,
  cache: EncoderCache | null,
): Promise<Prediction> {
  const { width: W, height: H } = image;
  const { stride, tileSize, overlap, margin } = options;
  const head = runsPixelHead(options, W, H) ? options.pixelHead : undefined;
  const classMap = new Uint8Array(W * H);
  const confidence = new Uint8Array(W * H);
  const xs = tileOrigins(W, tileSize, tileSize - overlap, stride);
  const ys = tileOrigins(H, tileSize, tileSize - overlap, stride);
  const total = xs.length * ys.length;
  let done = 0;
  let k = 0;
  // Rolling accumulators over the rows of the current tile row.
  let accRows = 0;
  let acc = new Float32Array(0);
  let wsum = new Float32Array(0);
  let accY0 = 0;
  // With the guided filter, the blended probabilities of the whole image, refined once all rows are in.
  let full: Float32Array | null = null;
  const finalize = (rowsToEmit: number): void => {
    for (let r = 0; r < rowsToEmit; r++) {
      const y = accY0 + r;
      if (full) {
        for (let x = 0; x < W; x++) {
          const a = r * W + x;
          const inv = wsum[a] > 0 ? 1 / wsum[a] : 0;
          for (let c = 0; c < k; c++) full[(y * W + x) * k + c] = acc[a * k + c] * inv;
        }
        continue;
      }
      for (let x = 0; x < W; x++) {
        const a = r * W + x;
        let best = 0;
        let bestP = -1;
        for (let c = 0; c < k; c++) {
          const p = acc[a * k + c];
          if (p > bestP) {
            bestP = p;
            best = c;
          }
        }
        const ws = wsum[a];
        classMap[y * W + x] = best;
        confidence[y * W + x] = Math.round(255 * Math.min(1, ws > 0 ? bestP / ws : 0));
      }
    }
  };
  if (total === 1) {
    // One window: every weight is 1, so the blend is the window's probabilities themselves (cropped from its
    // padded size); they are taken as they are, without the accumulators.
    const { probs, pw } = await predictWindow(forward, image, 0, 0, W, H, stride, cache);
    k = probs.length / (pw * Math.ceil(H / stride) * stride);
    // A window as wide as the image holds the image's rows first: they are taken as they are, not copied.
    let dense = probs.subarray(0, W * H * k);
    if (pw !== W) {
      dense = new Float32Array(W * H * k);
      for (let y = 0; y < H; y++) dense.set(probs.subarray(y * pw * k, (y * pw + W) * k), y * W * k);
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
    hooks.onTile?.(1, 1);
    if (guided || head || hooks.keepProbabilities) full = dense;
    else argmaxInto(dense, k, classMap, confidence);
  }
  for (let ty = 0; ty < ys.length && total > 1; ty++) {
    const y0 = ys[ty];
    const th = ty === ys.length - 1 ? H - y0 : tileSize;
    for (let tx = 0; tx < xs.length; tx++) {
      const x0 = xs[tx];
      const tw = tx === xs.length - 1 ? W - x0 : tileSize;
      const { probs, pw } = await predictWindow(forward, image, x0, y0, tw, th, stride, cache);
      const kk = probs.length / (pw * Math.ceil(th / stride) * stride);
      if (k === 0) {
        k = kk;
        accRows = Math.min(H, tileSize + stride);
        acc = new Float32Array(accRows * W * k);
        wsum = new Float32Array(accRows * W);
        accY0 = y0;
        if (guided || head || hooks.keepProbabilities) full = new Float32Array(W * H * k);
      }
      const innerLeft = tx > 0;
      const innerRight = tx < xs.length - 1;
      const innerTop = ty > 0;
      const innerBottom = ty < ys.length - 1;
      for (let y = 0; y < th; y++) {
        const wy = Math.min(
          innerTop ? ramp(y, margin, overlap) : 1,
          innerBottom ? ramp(th - 1 - y, margin, overlap) : 1,
        );
        if (wy === 0) continue;
        const row = (y0 + y - accY0) * W;
        for (let x = 0; x < tw; x++) {
          const wgt =
            wy * Math.min(innerLeft ? ramp(x, margin, overlap) : 1, innerRight ? ramp(tw - 1 - x, margin, overlap) : 1);
          if (wgt === 0) continue;
          const a = row + x0 + x;
          const src = (y * pw + x) * k;
          for (let c = 0; c < k; c++) acc[a * k + c] += wgt * probs[src + c];
          wsum[a] += wgt;
        }
      }
      done++;
      // Let the process read its messages (a cancel) between tiles: wasm reads resolve without a turn.
      await new Promise<void>((resolve) => setImmediate(resolve));
      hooks.onTile?.(done, total);
    }
    // Rows above the next tile row's start are final: emit them and slide the window down.
    const nextY0 = ty + 1 < ys.length ? ys[ty + 1] : H;
    const emit = nextY0 - accY0;
    finalize(emit);
    const keep = Math.max(0, (ty + 1 < ys.length ? Math.min(H, y0 + tileSize) : H) - nextY0);
    acc.copyWithin(0, emit * W * k, (emit + keep) * W * k);
    acc.fill(0, keep * W * k);
    wsum.copyWithin(0, emit * W, (emit + keep) * W);
    wsum.fill(0, keep * W);
    accY0 = nextY0;
  }
  if (full) {
    let final = guided ? await refineProbabilities(image.data, full, H, W, k, guided, 1 / 255, 0) : full;
    if (head) final = await runPixelHead(head, image, final);
    argmaxInto(final, k, classMap, confidence);
    if (hooks.keepProbabilities) return { width: W, height: H, classMap, confidence, probabilities: final };
  }
  return { width: W, height: H, classMap, confidence };
}
