import type { MaskImage, RgbImage } from '../masks/maskImage';
import { SeededRandom } from '../masks/seededRandom';

export interface SyntheticOptions {
  width: number;
  height: number;
  /** Foreground classes: 1 = ellipses, 2 = rotated rectangles (default 2 classes incl. background). */
  numClasses?: number;
  objects?: number;
  seed: number;
}

/**
 * One sample image with its exact mask: ellipses (class 1) and rotated rectangles (class 2) with their
 * own colour and texture on a textured, shaded background, edges softened by a one-pixel blend. The
 * same seed gives the same pixels everywhere.
 */
export function syntheticSample(options: SyntheticOptions): { image: RgbImage; mask: MaskImage } {
  const { width, height, seed } = options;
  const numClasses = options.numClasses ?? 2;
  const rng = new SeededRandom(seed);
  const n = width * height;
  const img = new Float32Array(n * 3);
  // Background: shaded gradient, low-frequency blobs and pixel noise.
  const base = [rng.range(60, 140), rng.range(60, 140), rng.range(60, 140)];
  const gx = rng.range(-40, 40) / width;
  const gy = rng.range(-40, 40) / height;
  const fx = rng.range(0.02, 0.08);
  const fy = rng.range(0.02, 0.08);
  const phase = rng.range(0, Math.PI * 2);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const shade = gx * x + gy * y + 18 * Math.sin(fx * x + phase) * Math.cos(fy * y);
      for (let c = 0; c < 3; c++) img[(y * width + x) * 3 + c] = base[c] + shade + rng.normal() * 14;
    }
  }
  const mask = new Uint8Array(n);
  const coverage = new Float32Array(n);
  const count = options.objects ?? rng.int(2, 5);
  for (let k = 0; k < count; k++) {
    const cls = numClasses > 2 ? 1 + (k % (numClasses - 1)) : 1;
    const cx = rng.range(0.15, 0.85) * width;
    const cy = rng.range(0.15, 0.85) * height;
    const size = Math.min(width, height);
    const a = rng.range(0.08, 0.2) * size;
    const b = rng.range(0.06, 0.18) * size;
    const angle = rng.range(0, Math.PI);
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    const tint =
      cls === 1
        ? [rng.range(170, 230), rng.range(120, 180), rng.range(40, 90)]
        : [rng.range(40, 90), rng.range(150, 210), rng.range(170, 230)];
    const stripe = rng.range(0.3, 0.9);
    const x0 = Math.max(0, Math.floor(cx - a - b - 2));
    const x1 = Math.min(width, Math.ceil(cx + a + b + 2));
    const y0 = Math.max(0, Math.floor(cy - a - b - 2));
    const y1 = Math.min(height, Math.ceil(cy + a + b + 2));
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        // Signed distance (in pixels, negative inside) to the shape's edge, for an antialiased blend.
        const dx = x + 0.5 - cx;
        const dy = y + 0.5 - cy;
        const u = dx * cos + dy * sin;
        const v = -dx * sin + dy * cos;
        let sd: number;
        if (cls === 1) {
          const r = Math.sqrt((u * u) / (a * a) + (v * v) / (b * b));
          sd = (r - 1) * Math.min(a, b);
        } else {
          sd = Math.max(Math.abs(u) - a, Math.abs(v) - b);
        }
        const alpha = Math.min(1, Math.max(0, 0.5 - sd));
        if (alpha <= 0) continue;
        const i = y * width + x;
        const tex = 20 * Math.sin(stripe * (u + v)) + rng.normal() * 10;
        for (let c = 0; c < 3; c++) img[i * 3 + c] = img[i * 3 + c] * (1 - alpha) + (tint[c] + tex) * alpha;
        if (alpha >= 0.5 && alpha >= coverage[i]) mask[i] = cls;
        if (alpha >= 0.5) coverage[i] = alpha;
      }
    }
  }
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.max(0, Math.min(255, Math.round(img[i])));
  return { image: { width, height, data }, mask: { width, height, data: mask } };
}
