// Turns label maps into RGBA for the canvas layers. Only the changed box is recoloured after an edit, so a
// brush stroke on a 4096x4096 mask costs the stroke's area, not the image's.
import type { Box } from '../../src/masks/maskDiff';
import type { EditorClass } from '../../src/protocol/editorProtocol';

const IGNORE = 255;

/** Packed little-endian RGBA per class index (0 = transparent background, 255 = ignore in grey). */
export function colourTable(classes: EditorClass[]): Uint32Array {
  const lut = new Uint32Array(256);
  for (let i = 1; i < 255; i++) lut[i] = rgba(hashColour(i), 255);
  for (const c of classes) if (c.index > 0 && c.index < 255) lut[c.index] = rgba(c.color, 255);
  lut[0] = 0;
  lut[IGNORE] = rgba('#808080', 255);
  return lut;
}

function hashColour(i: number): string {
  const h = (i * 137) % 360;
  return `hsl(${h}, 80%, 55%)`;
}

export function parseColour(css: string): [number, number, number] {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(css);
  if (m) return [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)];
  const hsl = /^hsl\((\d+), (\d+)%, (\d+)%\)$/.exec(css);
  if (hsl) {
    const h = Number(hsl[1]) / 360;
    const s = Number(hsl[2]) / 100;
    const l = Number(hsl[3]) / 100;
    const q = l < 0.5 ? l * (1 + s) : l + s - l * s;
    const p = 2 * l - q;
    const f = (t: number): number => {
      const u = t < 0 ? t + 1 : t > 1 ? t - 1 : t;
      const v = u < 1 / 6 ? p + (q - p) * 6 * u : u < 1 / 2 ? q : u < 2 / 3 ? p + (q - p) * (2 / 3 - u) * 6 : p;
      return Math.round(v * 255);
    };
    return [f(h + 1 / 3), f(h), f(h - 1 / 3)];
  }
  return [255, 0, 255];
}

function rgba(css: string, alpha: number): number {
  const [r, g, b] = parseColour(css);
  return ((alpha << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

/** RGBA of the mask inside `box`, as ImageData-ready bytes. */
export function maskPixels(
  mask: Uint8Array,
  width: number,
  box: Box,
  lut: Uint32Array,
): Uint8ClampedArray<ArrayBuffer> {
  const w = box.x1 - box.x0;
  const h = box.y1 - box.y0;
  const out = new Uint32Array(w * h);
  for (let y = 0; y < h; y++) {
    const src = (box.y0 + y) * width + box.x0;
    for (let x = 0; x < w; x++) out[y * w + x] = lut[mask[src + x]];
  }
  return new Uint8ClampedArray(out.buffer);
}

/**
 * The suggestion drawn apart from the mask: its class edges solid, its inside hatched (one diagonal line in
 * four), so painted mask and suggestion never look alike. With `confidence`, low confidence shows as
 * stronger magenta, whatever the class.
 */
export function suggestionPixels(
  labels: Uint8Array,
  width: number,
  height: number,
  lut: Uint32Array,
  confidence: Uint8Array | null,
): Uint8ClampedArray<ArrayBuffer> {
  const out = new Uint32Array(width * height);
  if (confidence) {
    for (let i = 0; i < out.length; i++) {
      const doubt = 255 - confidence[i];
      out[i] = ((Math.min(255, doubt * 2) << 24) | (255 << 16) | 255) >>> 0;
    }
    return new Uint8ClampedArray(out.buffer);
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const c = labels[i];
      // Background is never drawn: only suggested objects, their edge solid and their inside hatched.
      if (c === 0) continue;
      const edge =
        x === 0 ||
        x === width - 1 ||
        y === 0 ||
        y === height - 1 ||
        labels[i - 1] !== c ||
        labels[i + 1] !== c ||
        labels[i - width] !== c ||
        labels[i + width] !== c;
      if (edge) out[i] = lut[c];
      else if ((x + y) % 4 === 0) out[i] = ((lut[c] & 0x00ffffff) | (200 << 24)) >>> 0;
    }
  }
  return new Uint8ClampedArray(out.buffer);
}
