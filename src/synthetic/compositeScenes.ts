// Composite scenes for the benchmark on real photographs: object silhouettes with exact masks placed on real
// photographs, textured with other photographs, shaded, with anti-aliased edges and a soft cast shadow, then
// sensor noise. The mask is exact: a pixel belongs to an object when the object covers at least half of it
// (coverage is computed on a 4x4 subpixel grid), so the benchmark measures edges against a known truth.
import { SeededRandom } from '../masks/seededRandom';
import type { MaskImage, RgbImage } from '../masks/maskImage';

/** The object kinds, in class order (class index = position + 1). */
export const SCENE_CLASSES = ['animal', 'stone'] as const;
export type SceneClass = (typeof SCENE_CLASSES)[number];

/** Photographs and silhouettes the scenes are made from (decoded images). */
export interface SceneLibrary {
  /** Whole photographs: a random crop of one is each scene's background. */
  backgrounds: RgbImage[];
  /** Photographs whose crops texture the objects, per kind (real kinds differ in look, not only in shape). */
  textures: Record<SceneClass, RgbImage[]>;
  /** Binary silhouettes (foreground = bright) of the 'animal' kind. */
  silhouettes: RgbImage[];
}

export interface SceneOptions {
  size: number;
  seed: number;
  /** Objects per scene (inclusive range). */
  minObjects?: number;
  maxObjects?: number;
}

const SUB = 4;

function bilinear(img: RgbImage, x: number, y: number, c: number): number {
  const fx = Math.min(Math.max(x, 0), img.width - 1.001);
  const fy = Math.min(Math.max(y, 0), img.height - 1.001);
  const x0 = Math.floor(fx);
  const y0 = Math.floor(fy);
  const ax = fx - x0;
  const ay = fy - y0;
  const w = img.width;
  const d = img.data;
  const p = (xx: number, yy: number): number => d[(yy * w + xx) * 3 + c];
  return (
    (p(x0, y0) * (1 - ax) + p(x0 + 1, y0) * ax) * (1 - ay) + (p(x0, y0 + 1) * (1 - ax) + p(x0 + 1, y0 + 1) * ax) * ay
  );
}

/** Box blur of a float map, radius r, separable (the shadow's softness). */
function boxBlur(src: Float32Array, w: number, h: number, r: number): Float32Array {
  const tmp = new Float32Array(w * h);
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = -r; k <= r; k++) s += src[y * w + Math.min(w - 1, Math.max(0, x + k))];
      tmp[y * w + x] = s / (2 * r + 1);
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = -r; k <= r; k++) s += tmp[Math.min(h - 1, Math.max(0, y + k)) * w + x];
      out[y * w + x] = s / (2 * r + 1);
    }
  }
  return out;
}

/** An inside test in scene coordinates for one object. */
type Shape = (x: number, y: number) => boolean;

function silhouetteShape(sil: RgbImage, cx: number, cy: number, scale: number, angle: number, flip: boolean): Shape {
  const cos = Math.cos(-angle);
  const sin = Math.sin(-angle);
  return (x, y) => {
    // Scene -> silhouette coordinates (inverse rotation and scale about the object's centre).
    const dx = x - cx;
    const dy = y - cy;
    let u = (dx * cos - dy * sin) / scale;
    const v = (dx * sin + dy * cos) / scale;
    if (flip) u = -u;
    const sx = Math.floor(u + sil.width / 2);
    const sy = Math.floor(v + sil.height / 2);
    if (sx < 0 || sy < 0 || sx >= sil.width || sy >= sil.height) return false;
    // skimage's horse is dark on white: the object is the darker side.
    return sil.data[(sy * sil.width + sx) * 3] < 128;
  };
}

function blobShape(rng: SeededRandom, cx: number, cy: number, radius: number): Shape {
  // A star-convex blob: radius r(phi) = R (1 + sum a_k cos(k phi + p_k)), a few low harmonics.
  const harmonics = Array.from({ length: 4 }, (_, i) => ({
    k: i + 2,
    a: rng.range(0, 0.22 / (i + 1)),
    p: rng.range(0, 2 * Math.PI),
  }));
  return (x, y) => {
    const dx = x - cx;
    const dy = y - cy;
    const phi = Math.atan2(dy, dx);
    let r = 1;
    for (const h of harmonics) r += h.a * Math.cos(h.k * phi + h.p);
    return dx * dx + dy * dy < (radius * r) ** 2;
  };
}

/** One composite scene: its image and its exact mask (0 = background, k = SCENE_CLASSES[k - 1]). */
export function compositeScene(library: SceneLibrary, options: SceneOptions): { image: RgbImage; mask: MaskImage } {
  if (
    library.backgrounds.length === 0 ||
    SCENE_CLASSES.some((k) => library.textures[k].length === 0) ||
    library.silhouettes.length === 0
  ) {
    throw new Error(
      `composite scenes need at least one background, one texture per kind (${SCENE_CLASSES.join(', ')}) and one silhouette`,
    );
  }
  const n = options.size;
  const rng = new SeededRandom(options.seed);
  // Background: a random crop (a quarter to all of the shorter side) of a random photograph.
  const bg = library.backgrounds[rng.int(0, library.backgrounds.length)];
  const side = Math.min(bg.width, bg.height) * rng.range(0.25, 1);
  const bx = rng.range(0, bg.width - side);
  const by = rng.range(0, bg.height - side);
  const img = new Float32Array(n * n * 3);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      for (let c = 0; c < 3; c++)
        img[(y * n + x) * 3 + c] = bilinear(bg, bx + ((x + 0.5) * side) / n, by + ((y + 0.5) * side) / n, c);
    }
  }
  const mask = new Uint8Array(n * n);
  const count = rng.int(options.minObjects ?? 1, (options.maxObjects ?? 3) + 1);
  for (let o = 0; o < count; o++) {
    const cls = rng.int(1, SCENE_CLASSES.length + 1);
    const cx = rng.range(0.15, 0.85) * n;
    const cy = rng.range(0.15, 0.85) * n;
    let shape: Shape;
    if (SCENE_CLASSES[cls - 1] === 'animal') {
      const sil = library.silhouettes[rng.int(0, library.silhouettes.length)];
      const scale = (rng.range(0.3, 0.6) * n) / Math.max(sil.width, sil.height);
      shape = silhouetteShape(sil, cx, cy, scale, rng.range(-0.35, 0.35), rng.next() < 0.5);
    } else {
      shape = blobShape(rng, cx, cy, rng.range(0.08, 0.2) * n);
    }
    // Coverage on a 4x4 subpixel grid: anti-aliased edges in the image, exact halves in the mask.
    const cover = new Float32Array(n * n);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        let k = 0;
        for (let sy = 0; sy < SUB; sy++)
          for (let sx = 0; sx < SUB; sx++) if (shape(x + (sx + 0.5) / SUB, y + (sy + 0.5) / SUB)) k++;
        cover[y * n + x] = k / (SUB * SUB);
      }
    }
    // Cast shadow: the coverage, shifted and blurred, darkens what is under it.
    const sdx = rng.int(2, Math.max(3, Math.round(n / 40)));
    const sdy = rng.int(2, Math.max(3, Math.round(n / 40)));
    const shifted = new Float32Array(n * n);
    for (let y = sdy; y < n; y++) for (let x = sdx; x < n; x++) shifted[y * n + x] = cover[(y - sdy) * n + x - sdx];
    const shadow = boxBlur(shifted, n, n, Math.max(1, Math.round(n / 64)));
    const strength = rng.range(0.2, 0.45);
    // Texture: a crop of another photograph of this kind's, tinted per object, shaded by a linear light gradient.
    const textures = library.textures[SCENE_CLASSES[cls - 1]];
    const tex = textures[rng.int(0, textures.length)];
    const tscale = rng.range(0.5, 2);
    const tx = rng.range(0, Math.max(1, tex.width - n * tscale));
    const ty = rng.range(0, Math.max(1, tex.height - n * tscale));
    const tint = [rng.range(0.7, 1.3), rng.range(0.7, 1.3), rng.range(0.7, 1.3)];
    const lightAngle = rng.range(0, 2 * Math.PI);
    const lx = Math.cos(lightAngle) / n;
    const ly = Math.sin(lightAngle) / n;
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        const i = y * n + x;
        const a = cover[i];
        const dark = 1 - strength * shadow[i] * (1 - a);
        const shade = 0.85 + 0.5 * ((x - cx) * lx + (y - cy) * ly);
        for (let c = 0; c < 3; c++) {
          const t = Math.min(255, bilinear(tex, tx + x * tscale, ty + y * tscale, c) * tint[c] * shade);
          img[i * 3 + c] = img[i * 3 + c] * dark * (1 - a) + t * a;
        }
        if (a >= 0.5) mask[i] = cls;
      }
    }
  }
  // Sensor noise, then 8-bit.
  const data = new Uint8Array(n * n * 3);
  const sigma = rng.range(1, 4);
  for (let i = 0; i < data.length; i++) data[i] = Math.max(0, Math.min(255, Math.round(img[i] + sigma * rng.normal())));
  return { image: { width: n, height: n, data }, mask: { width: n, height: n, data: mask } };
}
