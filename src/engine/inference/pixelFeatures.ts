// Per-pixel filter features of an image, as ilastik's pixel classification computes them: at several scales,
// the Gaussian-smoothed intensity, its gradient magnitude, its Laplacian of Gaussian and the two eigenvalues of
// its Hessian (what draws a 2-pixel membrane or an edge that the network's stride-8 features blur), and the
// smoothed colour. Pure: the pixel head (pixelHead.ts) reads them at prediction and at its fit.
import type { RgbImage } from '../../masks/maskImage';

/** The Gaussian scales, in pixels. Chosen on the first half of the EM set (see docs/benchmarks.md). */
export const PIXEL_FEATURE_SIGMAS = [1, 2, 4, 8];
/** The scales at which the colour channels are smoothed. */
const COLOUR_SIGMAS = [2, 8];
/** Features per pixel: the intensity, 5 per scale, 3 colours per colour scale. */
export const PIXEL_FEATURE_COUNT = 1 + 5 * PIXEL_FEATURE_SIGMAS.length + 3 * COLOUR_SIGMAS.length;

/** Rows of context a band of features needs on each side: the widest kernel's radius and the derivatives' reach. */
export const FEATURE_HALO = Math.ceil(3 * Math.max(...PIXEL_FEATURE_SIGMAS, ...COLOUR_SIGMAS)) + 3;

function gaussianKernel(sigma: number): Float32Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float32Array(2 * r + 1);
  let total = 0;
  for (let i = -r; i <= r; i++) total += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= total;
  return k;
}

/** Mirror index into 0..n-1 (edge pixel repeated: ...1 0 | 0 1 2 ... n-1 | n-1 n-2...). */
export function mirror(i: number, n: number): number {
  for (;;) {
    if (i < 0) i = -i - 1;
    else if (i >= n) i = 2 * n - i - 1;
    else return i;
  }
}

/** Separable Gaussian smoothing of a w x h plane, mirrored at its borders (the kernel is symmetric: pairs share a weight). */
function smooth(src: Float32Array, w: number, h: number, kernel: Float32Array): Float32Array {
  const r = (kernel.length - 1) / 2;
  const k0 = kernel[r];
  const tmp = new Float32Array(w * h);
  const out = new Float32Array(w * h);
  const padded = new Float32Array(w + 2 * r);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let i = 0; i < padded.length; i++) padded[i] = src[row + mirror(i - r, w)];
    for (let x = 0; x < w; x++) {
      const c = x + r;
      let s = k0 * padded[c];
      for (let i = 1; i <= r; i++) s += kernel[r + i] * (padded[c - i] + padded[c + i]);
      tmp[row + x] = s;
    }
  }
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) out[row + x] = k0 * tmp[row + x];
    for (let i = 1; i <= r; i++) {
      const above = mirror(y - i, h) * w;
      const below = mirror(y + i, h) * w;
      const k = kernel[r + i];
      for (let x = 0; x < w; x++) out[row + x] += k * (tmp[above + x] + tmp[below + x]);
    }
  }
  return out;
}

/** Central differences along x or y, one-sided at the borders. */
function derivative(src: Float32Array, w: number, h: number, alongX: boolean): Float32Array {
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (alongX) {
        const a = x > 0 ? x - 1 : x;
        const b = x < w - 1 ? x + 1 : x;
        out[y * w + x] = b > a ? (src[y * w + b] - src[y * w + a]) / (b - a) : 0;
      } else {
        const a = y > 0 ? y - 1 : y;
        const b = y < h - 1 ? y + 1 : y;
        out[y * w + x] = b > a ? (src[b * w + x] - src[a * w + x]) / (b - a) : 0;
      }
    }
  }
  return out;
}

/** The planes a band's features are computed from: its rows with FEATURE_HALO rows of context on each side. */
export interface FeatureBand {
  width: number;
  /** Rows in the band with its context (bottom - top). */
  height: number;
  /** First image row of the band with its context. */
  top: number;
  /** Grey (0.299 R + 0.587 G + 0.114 B) and the three colours, scaled to [0, 1], width x height each. */
  grey: Float32Array;
  colour: Float32Array[];
}

/** The smoothings every band needs, in this order: grey at each of PIXEL_FEATURE_SIGMAS, then each colour sigma's three colours. */
export const SMOOTHINGS: readonly { plane: 'grey' | 0 | 1 | 2; sigma: number }[] = [
  ...PIXEL_FEATURE_SIGMAS.map((sigma) => ({ plane: 'grey' as const, sigma })),
  ...COLOUR_SIGMAS.flatMap((sigma) => ([0, 1, 2] as const).map((plane) => ({ plane, sigma }))),
];

/** Radius of the widest smoothing kernel. */
export const MAX_KERNEL_RADIUS = Math.ceil(3 * Math.max(...PIXEL_FEATURE_SIGMAS, ...COLOUR_SIGMAS));

/** The Gaussian kernel of a sigma, as the features use it (radius ceil(3 sigma), normalised), zero-padded to `radius`. */
export function paddedKernel(sigma: number, radius: number): Float32Array {
  const k = gaussianKernel(sigma);
  const r = (k.length - 1) / 2;
  const out = new Float32Array(2 * radius + 1);
  out.set(k, radius - r);
  return out;
}

/** The rows y0..y1-1 of the image with their context, as planes. */
export function featureBand(image: RgbImage, y0: number, y1: number): FeatureBand {
  const w = image.width;
  const top = Math.max(0, y0 - FEATURE_HALO);
  const bottom = Math.min(image.height, y1 + FEATURE_HALO);
  const h = bottom - top;
  const grey = new Float32Array(w * h);
  const colour = [new Float32Array(w * h), new Float32Array(w * h), new Float32Array(w * h)];
  for (let i = 0; i < w * h; i++) {
    const s = (top * w + i) * 3;
    const r = image.data[s] / 255;
    const g = image.data[s + 1] / 255;
    const b = image.data[s + 2] / 255;
    colour[0][i] = r;
    colour[1][i] = g;
    colour[2][i] = b;
    grey[i] = 0.299 * r + 0.587 * g + 0.114 * b;
  }
  return { width: w, height: h, top, grey, colour };
}

/** A band's smoothings (SMOOTHINGS' order) in plain JS. */
export function smoothBand(band: FeatureBand): Float32Array[] {
  return SMOOTHINGS.map(({ plane, sigma }) =>
    smooth(plane === 'grey' ? band.grey : band.colour[plane], band.width, band.height, gaussianKernel(sigma)),
  );
}

/**
 * The features of rows y0..y1-1 from their band and its smoothings (SMOOTHINGS' order, however computed): one
 * plane (width x (y1-y0)) per feature, in the order PIXEL_FEATURE_COUNT counts them.
 */
export function bandFeatures(band: FeatureBand, smoothed: Float32Array[], y0: number, y1: number): Float32Array[] {
  const { width: w, height: h, top, grey } = band;
  const full: Float32Array[] = [grey];
  for (const [s, sigma] of PIXEL_FEATURE_SIGMAS.entries()) {
    const g = smoothed[s];
    const gx = derivative(g, w, h, true);
    const gy = derivative(g, w, h, false);
    const gxx = derivative(gx, w, h, true);
    const gyy = derivative(gy, w, h, false);
    const gxy = derivative(gx, w, h, false);
    const magnitude = new Float32Array(w * h);
    const laplacian = new Float32Array(w * h);
    const large = new Float32Array(w * h);
    const small = new Float32Array(w * h);
    // Scale-normalised (Lindeberg): first derivatives times sigma, second times sigma squared.
    const s2 = sigma * sigma;
    for (let i = 0; i < w * h; i++) {
      magnitude[i] = Math.sqrt(gx[i] * gx[i] + gy[i] * gy[i]) * sigma;
      const trace = gxx[i] + gyy[i];
      const root = Math.sqrt((gxx[i] - gyy[i]) ** 2 + 4 * gxy[i] * gxy[i]);
      laplacian[i] = trace * s2;
      large[i] = ((trace + root) / 2) * s2;
      small[i] = ((trace - root) / 2) * s2;
    }
    full.push(g, magnitude, laplacian, large, small);
  }
  full.push(...smoothed.slice(PIXEL_FEATURE_SIGMAS.length));
  const from = (y0 - top) * w;
  const to = (y1 - top) * w;
  return full.map((plane) => (from === 0 && to === plane.length ? plane : plane.slice(from, to)));
}

/**
 * The features of rows y0..y1-1 of the image, one plane (width x (y1-y0)) per feature, in the order
 * PIXEL_FEATURE_COUNT counts them. A band is computed from FEATURE_HALO rows of context on each side, so bands
 * tile the image with the same values the whole image would give (tested).
 */
export function pixelFeatures(image: RgbImage, y0 = 0, y1 = image.height): Float32Array[] {
  const band = featureBand(image, y0, y1);
  return bandFeatures(band, smoothBand(band), y0, y1);
}
