// Dense optical flow between two images: OpenCV's Farnebäck flow, from the npm package @techstark/opencv-js
// (OpenCV 4.12 compiled to WebAssembly; pure JS, nothing native, nothing downloaded). Loaded once per
// process, on first use: about 0.6 s here. Runs in the model process only.
import type { RgbImage } from '../../masks/maskImage';

/** The few OpenCV.js calls used here (the package's own typings cover the whole library). */
interface CvMat {
  data32F: Float32Array;
  delete(): void;
}
interface OpenCv {
  CV_8UC1: number;
  Mat: new () => CvMat;
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
 * The flow from `from` to `to`: for each pixel (x, y) of `from`, the offset (u, v) at which it is found in
 * `to`, so from(x, y) ~ to(x + u, y + v). Interleaved u, v per pixel (width x height x 2). The images must
 * have the same size.
 */
export async function denseFlow(from: RgbImage, to: RgbImage): Promise<Float32Array> {
  if (from.width !== to.width || from.height !== to.height)
    throw new Error(`optical flow needs images of one size: ${from.width}x${from.height} and ${to.width}x${to.height}`);
  const { cv } = await loadOpenCv();
  const a = cv.matFromArray(from.height, from.width, cv.CV_8UC1, greyBytes(from));
  const b = cv.matFromArray(to.height, to.width, cv.CV_8UC1, greyBytes(to));
  const flow = new cv.Mat();
  try {
    const f = FARNEBACK;
    cv.calcOpticalFlowFarneback(a, b, flow, f.pyrScale, f.levels, f.winsize, f.iterations, f.polyN, f.polySigma, 0);
    return new Float32Array(flow.data32F);
  } finally {
    a.delete();
    b.delete();
    flow.delete();
  }
}
