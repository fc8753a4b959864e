import { boundaryBand } from './losses';
import { IGNORE_INDEX, type MaskImage, type RgbImage } from '../../masks/maskImage';
import type { SeededRandom } from '../../masks/seededRandom';
import { normalizePixel } from '../network/networkInput';

export interface Crop {
  /** [size, size, 3], normalised */
  x: Float32Array;
  /** [size, size], class indices, 255 = ignore */
  y: Int32Array;
  /** [size, size], 1 inside the boundary band */
  band: Float32Array;
}

export interface AugmentOptions {
  size: number;
  /** Share of crops centred on a class boundary, so edges get seen often. */
  boundaryBias: number;
  boundaryRadius: number;
  colorJitter: number;
  /**
   * Hue and saturation jitter, 0-1: the whole crop's colours turn around the grey axis by up to this share
   * of 180 degrees and their saturation scales by 1 +- this. Object and background turn together, so their
   * contrast stays; what goes is a colour shortcut (three green backgrounds teach "green is background", and
   * the next orange background is painted as an object). 0 = off (and no random draws for it).
   */
  hueJitter?: number;
}

/**
 * The 3x3 matrix that turns RGB colours by `angle` radians around the grey axis and scales their
 * saturation (distance from that axis) by `saturation`; greys stay as they are. Row-major.
 */
export function hueSaturationMatrix(angle: number, saturation: number): number[] {
  // Rodrigues' rotation about the unit axis (1,1,1)/sqrt(3): R = cI + (1-c)aa^T + s[a]x.
  const c = Math.cos(angle);
  const sn = Math.sin(angle) / Math.sqrt(3);
  const t = (1 - c) / 3;
  const r = [c + t, t - sn, t + sn, t + sn, c + t, t - sn, t - sn, t + sn, c + t];
  // M = P + saturation * R (I - P), P = the projection on the grey axis (all entries 1/3); R commutes with P.
  return r.map((v) => 1 / 3 + saturation * (v - 1 / 3));
}

/** Hue/saturation jitter when the automatic choice finds no colour cue between the classes. */
export const AUTO_HUE_JITTER = 0.5;

/**
 * Two foreground classes whose mean colours lie this many spreads apart count as told apart by colour. On the
 * composite scenes (animals and stones, both tinted at random) the largest separation was 3.3 over any
 * first 2-20 images of three sets; on generated shapes (orange ellipses, cyan rectangles), 7.4-12.8.
 */
export const COLOUR_CUE_SEPARATION = 5;

/**
 * How far apart in colour two foreground classes are, across the training images: for each image and each
 * foreground class in it, the mean chroma of that class's pixels (opponent axes R-G and (R+G)/2-B); then,
 * for each pair of classes, the distance between the means of those per-image chromas divided by the
 * per-image spread (the root mean of the two classes' variances, pooled over all classes when either has a
 * single image). The largest over the pairs, with the pair; no separation (and why) when fewer than two
 * foreground classes appear, or no class appears in two images (nothing to measure a spread on).
 */
export function colourSeparation(
  samples: readonly { image: RgbImage; mask: MaskImage }[],
  numClasses: number,
): { separation: number; classes: [number, number] } | { separation: null; why: string } {
  const perClass: [number, number][][] = Array.from({ length: numClasses }, () => []);
  for (const { image, mask } of samples) {
    const sum = new Float64Array(numClasses * 2);
    const count = new Float64Array(numClasses);
    for (let i = 0; i < mask.data.length; i++) {
      const c = mask.data[i];
      if (c === 0 || c >= numClasses) continue;
      const r = image.data[i * 3];
      const g = image.data[i * 3 + 1];
      const b = image.data[i * 3 + 2];
      sum[c * 2] += r - g;
      sum[c * 2 + 1] += (r + g) / 2 - b;
      count[c]++;
    }
    for (let c = 1; c < numClasses; c++)
      if (count[c] > 0) perClass[c].push([sum[c * 2] / count[c], sum[c * 2 + 1] / count[c]]);
  }
  const stats = perClass.map((list) => {
    if (list.length === 0) return null;
    const mean: [number, number] = [
      list.reduce((a, p) => a + p[0], 0) / list.length,
      list.reduce((a, p) => a + p[1], 0) / list.length,
    ];
    const variance =
      list.length < 2
        ? null
        : list.reduce((a, p) => a + (p[0] - mean[0]) ** 2 + (p[1] - mean[1]) ** 2, 0) / (list.length - 1);
    return { mean, variance, n: list.length };
  });
  if (stats.filter((st) => st !== null).length < 2)
    return {
      separation: null,
      why: 'fewer than two foreground classes in the training masks, so no two classes for colour to tell apart',
    };
  const withSpread = stats.filter(
    (st): st is { mean: [number, number]; variance: number; n: number } => st !== null && st.variance !== null,
  );
  if (withSpread.length === 0)
    return { separation: null, why: 'no class is in two training images yet, so colour spread cannot be measured' };
  const pooled =
    withSpread.reduce((a, st) => a + st.variance * (st.n - 1), 0) / withSpread.reduce((a, st) => a + st.n - 1, 0);
  let best: { separation: number; classes: [number, number] } | null = null;
  for (let a = 1; a < numClasses; a++) {
    for (let b = a + 1; b < numClasses; b++) {
      const sa = stats[a];
      const sb = stats[b];
      if (!sa || !sb) continue;
      const spread =
        sa.variance !== null && sb.variance !== null ? Math.sqrt((sa.variance + sb.variance) / 2) : Math.sqrt(pooled);
      const separation = Math.hypot(sa.mean[0] - sb.mean[0], sa.mean[1] - sb.mean[1]) / Math.max(spread, 1);
      if (!best || separation > best.separation) best = { separation, classes: [a, b] };
    }
  }
  return best ?? { separation: null, why: 'no two classes to compare' };
}

/**
 * The hue jitter a fine-tune uses, and why. A number is used as given. 'auto' keeps colours (0) when two
 * foreground classes are told apart by colour (`colourSeparation` beyond COLOUR_CUE_SEPARATION: jitter would
 * take away the cue that names them) and uses AUTO_HUE_JITTER otherwise, so that no colour shortcut is learnt
 * (a background colour seen in the first images taken for "background").
 */
export function resolveHueJitter(
  setting: number | 'auto',
  samples: readonly { image: RgbImage; mask: MaskImage }[],
  numClasses: number,
): { value: number; reason: string } {
  if (setting !== 'auto') return { value: setting, reason: `hue jitter ${setting}, as set` };
  const sep = colourSeparation(samples, numClasses);
  if (sep.separation === null)
    return { value: AUTO_HUE_JITTER, reason: `hue jitter ${AUTO_HUE_JITTER} (auto): ${sep.why}` };
  if (sep.separation > COLOUR_CUE_SEPARATION) {
    return {
      value: 0,
      reason: `hue jitter off (auto): classes ${sep.classes[0]} and ${sep.classes[1]} lie ${sep.separation.toFixed(1)} spreads apart in colour across the training images, so colour tells them apart`,
    };
  }
  return {
    value: AUTO_HUE_JITTER,
    reason: `hue jitter ${AUTO_HUE_JITTER} (auto): the classes lie at most ${sep.separation.toFixed(1)} spreads apart in colour (${COLOUR_CUE_SEPARATION} would mean colour tells them apart)`,
  };
}

/** Where a crop lies and how it is transformed: every random draw of a crop, in the order they are made. */
interface Placement {
  x0: number;
  y0: number;
  flipX: boolean;
  flipY: boolean;
  rot: number;
  brightness: number;
  contrast: number;
  gains: number[];
  colour: number[] | null;
}

function placeCrop(image: RgbImage, mask: MaskImage, rng: SeededRandom, options: AugmentOptions): Placement {
  const { width: w, height: h } = image;
  const s = options.size;
  let cx = rng.int(0, Math.max(1, w));
  let cy = rng.int(0, Math.max(1, h));
  if (rng.next() < options.boundaryBias) {
    // Pick a boundary pixel by rejection sampling (bounded tries).
    for (let t = 0; t < 200; t++) {
      const x = rng.int(0, w - 1);
      const y = rng.int(0, h - 1);
      const i = y * w + x;
      const v = mask.data[i];
      if (
        v !== IGNORE_INDEX &&
        ((mask.data[i + 1] !== v && mask.data[i + 1] !== IGNORE_INDEX) ||
          (y + 1 < h && mask.data[i + w] !== v && mask.data[i + w] !== IGNORE_INDEX))
      ) {
        cx = x;
        cy = y;
        break;
      }
    }
  }
  const x0 = Math.min(Math.max(0, cx - Math.floor(s / 2) + rng.int(-s / 4, s / 4 + 1)), Math.max(0, w - s));
  const y0 = Math.min(Math.max(0, cy - Math.floor(s / 2) + rng.int(-s / 4, s / 4 + 1)), Math.max(0, h - s));
  const flipX = rng.next() < 0.5;
  const flipY = rng.next() < 0.5;
  const rot = rng.int(0, 4);
  const j = options.colorJitter;
  const brightness = rng.range(-j, j) * 127.5;
  const contrast = 1 + rng.range(-j, j);
  const gains = [1 + rng.range(-j, j) / 2, 1 + rng.range(-j, j) / 2, 1 + rng.range(-j, j) / 2];
  const hj = options.hueJitter ?? 0;
  const colour = hj > 0 ? hueSaturationMatrix(rng.range(-hj, hj) * Math.PI, Math.max(0, 1 + rng.range(-hj, hj))) : null;
  return { x0, y0, flipX, flipY, rot, brightness, contrast, gains, colour };
}

/**
 * Visits each pixel of a placed crop: its index in the crop and the index of its source pixel in the image
 * (-1 outside the image). Rotate then flip in crop coordinates.
 */
function eachCropPixel(w: number, h: number, s: number, p: Placement, visit: (o: number, si: number) => void): void {
  // (u, v), the source position inside the crop of output pixel (ox, oy): rotations and flips compose to an
  // affine map, read off at three points.
  const source = (ox: number, oy: number): [number, number] => {
    let u = ox;
    let v = oy;
    for (let r = 0; r < p.rot; r++) [u, v] = [v, s - 1 - u];
    if (p.flipX) u = s - 1 - u;
    if (p.flipY) v = s - 1 - v;
    return [u, v];
  };
  const [u0, v0] = source(0, 0);
  const [u1, v1] = source(1, 0);
  const [u2, v2] = source(0, 1);
  const [dux, dvx, duy, dvy] = [u1 - u0, v1 - v0, u2 - u0, v2 - v0];
  for (let oy = 0; oy < s; oy++) {
    let sx = p.x0 + u0 + duy * oy;
    let sy = p.y0 + v0 + dvy * oy;
    for (let ox = 0; ox < s; ox++, sx += dux, sy += dvx) visit(oy * s + ox, sx >= w || sy >= h ? -1 : sy * w + sx);
  }
}

/**
 * A random training crop: position (biased toward class boundaries), horizontal/vertical flip, one
 * of four 90-degree rotations, brightness/contrast/per-channel jitter. Outside the image the mask is
 * ignore (255), so small images pad without teaching anything false.
 */
export function randomCrop(image: RgbImage, mask: MaskImage, rng: SeededRandom, options: AugmentOptions): Crop {
  const s = options.size;
  const p = placeCrop(image, mask, rng, options);
  const { brightness, contrast, gains, colour } = p;
  const rgb = [0, 0, 0];
  const x = new Float32Array(s * s * 3);
  const y = new Int32Array(s * s);
  eachCropPixel(image.width, image.height, s, p, (o, si) => {
    if (si < 0) {
      y[o] = IGNORE_INDEX;
      return;
    }
    y[o] = mask.data[si];
    for (let c = 0; c < 3; c++) rgb[c] = image.data[si * 3 + c];
    if (colour) {
      const [r, g, b] = rgb;
      for (let c = 0; c < 3; c++) rgb[c] = colour[c * 3] * r + colour[c * 3 + 1] * g + colour[c * 3 + 2] * b;
    }
    for (let c = 0; c < 3; c++) {
      const v = (rgb[c] - 127.5) * contrast * gains[c] + 127.5 + brightness;
      x[o * 3 + c] = normalizePixel(Math.max(0, Math.min(255, v)));
    }
  });
  return { x, y, band: boundaryBand(y, s, s, options.boundaryRadius) };
}

/** The labels of the crop `randomCrop` would draw with the same generator state (and the same draws from it). */
export function randomCropLabels(
  image: RgbImage,
  mask: MaskImage,
  rng: SeededRandom,
  options: AugmentOptions,
): Int32Array {
  const s = options.size;
  const y = new Int32Array(s * s);
  eachCropPixel(image.width, image.height, s, placeCrop(image, mask, rng, options), (o, si) => {
    y[o] = si < 0 ? IGNORE_INDEX : mask.data[si];
  });
  return y;
}
