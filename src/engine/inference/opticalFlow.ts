// Dense optical flow between two images: OpenCV's Farnebäck flow, from the npm package @techstark/opencv-js
// (OpenCV 4.12 compiled to WebAssembly; pure JS, nothing native, nothing downloaded). Loaded once per
// process, on first use: about 0.6 s here. Runs in the model process only.
import { createHash } from 'node:crypto';
import type { RgbImage } from '../../masks/maskImage';

/** The few OpenCV.js calls used here (the package's own typings cover the whole library). */
interface CvMat {
  data32F: Float32Array;
  delete(): void;
}
interface OpenCv {
  CV_8UC1: number;
  INTER_AREA: number;
  INTER_LINEAR: number;
  Mat: new () => CvMat;
  Size: new (width: number, height: number) => unknown;
  resize(src: CvMat, dst: CvMat, size: unknown, fx: number, fy: number, interpolation: number): void;
  matFromArray(rows: number, cols: number, type: number, data: ArrayLike<number>): CvMat;
  calcOpticalFlowFarneback(
    prev: CvMat,
    next: CvMat,
    flow: CvMat,
    pyrScale: number,
    levels: number,
    winsize: number,
    iterations: number,
    polyN: number,
    polySigma: number,
    flags: number,
  ): void;
}

/**
 * The module, wrapped: an Emscripten module is a thenable that resolves to itself, so a promise (or an async
 * function) that resolved to it directly would never settle.
 */
let loading: Promise<{ cv: OpenCv }> | undefined;

function loadOpenCv(): Promise<{ cv: OpenCv }> {
  loading ??= new Promise<{ cv: OpenCv }>((resolve, reject) => {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require('@techstark/opencv-js') as OpenCv & { onRuntimeInitialized?: () => void };
      if (typeof mod.matFromArray === 'function' && typeof mod.calcOpticalFlowFarneback === 'function')
        resolve({ cv: mod });
      else mod.onRuntimeInitialized = () => resolve({ cv: mod });
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
  return loading;
}

/** The image's luma, 8 bits per pixel. */
export function greyBytes(image: RgbImage): Uint8Array {
  const n = image.width * image.height;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const s = i * 3;
    out[i] = Math.round(0.299 * image.data[s] + 0.587 * image.data[s + 1] + 0.114 * image.data[s + 2]);
  }
  return out;
}

/**
 * Farnebäck's parameters: a 5-level pyramid (motions of tens of pixels between frames a second apart), 21-pixel
 * windows, 7-pixel polynomial neighbourhoods (OpenCV's suggested 1.5 sigma for them), 3 iterations per level.
 */
const FARNEBACK = { pyrScale: 0.5, levels: 5, winsize: 21, iterations: 3, polyN: 7, polySigma: 1.5 };

/**
 * Flows are computed on images at most this many pixels on their longer side: larger ones are shrunk (area
 * average) for the flow, which is then enlarged back (bilinear) and scaled. Farnebäck's cost grows with the
 * pixels: a flow between 1920x1080 frames took 0.85 s at full size here and 0.21 s shrunk to 960x540, and
 * street frames enlarged to 1920x1080 were carried as well shrunk (see docs/benchmarks.md).
 */
export const FLOW_MAX_SIDE = 960;

/**
 * The flows computed last are kept, by their images' contents, up to this many bytes: walking down a sequence,
 * a frame's suggestion needs the flows between the frames before it that the previous frame's suggestion
 * computed (a 480x360 flow is 1.4 MB, a 1920x1080 one 16.6 MB).
 */
export const KEPT_FLOW_BYTES = 64 * 1024 * 1024;
const keptFlows = new Map<string, Float32Array>();
let keptBytes = 0;
const fingerprints = new WeakMap<RgbImage, string>();

/** An image's fingerprint: its size and a SHA-1 of its pixels (kept per image object). */
function fingerprint(image: RgbImage): string {
  let print = fingerprints.get(image);
  if (print === undefined) {
    print = `${image.width}x${image.height}:${createHash('sha1').update(image.data).digest('hex')}`;
    fingerprints.set(image, print);
  }
  return print;
}

let flowsComputed = 0;

/** Flows computed afresh (not found kept) so far in this process. */
export function flowsComputedSoFar(): number {
  return flowsComputed;
}

/**
 * The flow from `from` to `to`: for each pixel (x, y) of `from`, the offset (u, v) at which it is found in
 * `to`, so from(x, y) ~ to(x + u, y + v). Interleaved u, v per pixel (width x height x 2). The images must
 * have the same size; images over `maxSide` are flowed shrunk, and the flow comes back at full size. A flow
 * between the same two images (by content) is found kept (KEPT_FLOW_BYTES); the caller must not change it.
 */
export async function denseFlow(from: RgbImage, to: RgbImage, maxSide = FLOW_MAX_SIDE): Promise<Float32Array> {
  if (from.width !== to.width || from.height !== to.height)
    throw new Error(`optical flow needs images of one size: ${from.width}x${from.height} and ${to.width}x${to.height}`);
  const key = `${fingerprint(from)}>${fingerprint(to)}@${maxSide}`;
  const kept = keptFlows.get(key);
  if (kept) {
    // The most recently used is kept longest.
    keptFlows.delete(key);
    keptFlows.set(key, kept);
    return kept;
  }
  const flow = await computeFlow(from, to, maxSide);
  flowsComputed++;
  keptFlows.set(key, flow);
  keptBytes += flow.byteLength;
  for (const [oldKey, old] of keptFlows) {
    if (keptBytes <= KEPT_FLOW_BYTES || keptFlows.size <= 1) break;
    keptFlows.delete(oldKey);
    keptBytes -= old.byteLength;
  }
  return flow;
}

/** Lets go of every kept flow (the benchmark times flows computed afresh). */
export function forgetFlows(): void {
  keptFlows.clear();
  keptBytes = 0;
}

async function computeFlow(from: RgbImage, to: RgbImage, maxSide: number): Promise<Float32Array> {
  const { cv } = await loadOpenCv();
  const W = from.width;
  const H = from.height;
  const scale = Math.min(1, maxSide / Math.max(W, H));
  const w = Math.max(1, Math.round(W * scale));
  const h = Math.max(1, Math.round(H * scale));
  const mats: CvMat[] = [];
  const grey = (image: RgbImage): CvMat => {
    const full = cv.matFromArray(H, W, cv.CV_8UC1, greyBytes(image));
    mats.push(full);
    if (w === W && h === H) return full;
    const small = new cv.Mat();
    mats.push(small);
    cv.resize(full, small, new cv.Size(w, h), 0, 0, cv.INTER_AREA);
    return small;
  };
  try {
    const a = grey(from);
    const b = grey(to);
    const flow = new cv.Mat();
    mats.push(flow);
    const f = FARNEBACK;
    cv.calcOpticalFlowFarneback(a, b, flow, f.pyrScale, f.levels, f.winsize, f.iterations, f.polyN, f.polySigma, 0);
    if (w === W && h === H) return new Float32Array(flow.data32F);
    const big = new cv.Mat();
    mats.push(big);
    cv.resize(flow, big, new cv.Size(W, H), 0, 0, cv.INTER_LINEAR);
    const out = new Float32Array(big.data32F);
    // Offsets measured in the small image's pixels, in the full image's.
    const su = W / w;
    const sv = H / h;
    for (let i = 0; i < out.length; i += 2) {
      out[i] *= su;
      out[i + 1] *= sv;
    }
    return out;
  } finally {
    for (const m of mats) m.delete();
  }
}
