import { boundaryBand } from './losses';
import { IGNORE_INDEX, type MaskImage, type RgbImage } from '../masks/maskImage';
import type { SeededRandom } from '../masks/seededRandom';

/** Network input normalisation: 8-bit RGB to [-1, 1]. */
export function normalizePixel(v: number): number {
  return v / 127.5 - 1;
}

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
}

/**
 * A random training crop: position (biased toward class boundaries), horizontal/vertical flip, one
 * of four 90-degree rotations, brightness/contrast/per-channel jitter. Outside the image the mask is
 * ignore (255), so small images pad without teaching anything false.
 */
export function randomCrop(image: RgbImage, mask: MaskImage, rng: SeededRandom, options: AugmentOptions): Crop {
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
      if (v !== IGNORE_INDEX && ((mask.data[i + 1] !== v && mask.data[i + 1] !== IGNORE_INDEX) || (y + 1 < h && mask.data[i + w] !== v && mask.data[i + w] !== IGNORE_INDEX))) {
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
  const x = new Float32Array(s * s * 3);
  const y = new Int32Array(s * s);
  for (let oy = 0; oy < s; oy++) {
    for (let ox = 0; ox < s; ox++) {
      // Rotate then flip in crop coordinates: (u, v) is the source position inside the crop.
      let u = ox;
      let v = oy;
      for (let r = 0; r < rot; r++) [u, v] = [v, s - 1 - u];
      if (flipX) u = s - 1 - u;
      if (flipY) v = s - 1 - v;
      const sx = x0 + u;
      const sy = y0 + v;
      const o = oy * s + ox;
      if (sx >= w || sy >= h) {
        y[o] = IGNORE_INDEX;
        continue;
      }
      const si = sy * w + sx;
      y[o] = mask.data[si];
      for (let c = 0; c < 3; c++) {
        const p = (image.data[si * 3 + c] - 127.5) * contrast * gains[c] + 127.5 + brightness;
        x[o * 3 + c] = normalizePixel(Math.max(0, Math.min(255, p)));
      }
    }
  }
  return { x, y, band: boundaryBand(y, s, s, options.boundaryRadius) };
}
