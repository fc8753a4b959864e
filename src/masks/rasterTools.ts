// Pixel-exact painting operations shared by the webview (tools) and the host (accept region). Pure: they
// take a mask, change it in place and grow a box that bounds what they touched.
import { growBox, type Box } from './maskDiff';
import type { MaskImage } from './maskImage';

export interface Point {
  x: number;
  y: number;
}

/**
 * Paints a round brush of `size` pixels (diameter) dragged from a to b: every pixel whose centre lies within
 * size/2 of the segment. A continuous capsule, so a fast stroke leaves no gaps between pointer events.
 */
export function paintSegment(mask: MaskImage, a: Point, b: Point, size: number, value: number, box: Box): void {
  const r = Math.max(size / 2, 0.5);
  const x0 = Math.max(0, Math.floor(Math.min(a.x, b.x) - r));
  const y0 = Math.max(0, Math.floor(Math.min(a.y, b.y) - r));
  const x1 = Math.min(mask.width, Math.ceil(Math.max(a.x, b.x) + r) + 1);
  const y1 = Math.min(mask.height, Math.ceil(Math.max(a.y, b.y) + r) + 1);
  if (x1 <= x0 || y1 <= y0) return;
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len2 = dx * dx + dy * dy;
  const r2 = r * r;
  let touched = false;
  let tx0 = x1;
  let ty0 = y1;
  let tx1 = x0;
  let ty1 = y0;
  for (let y = y0; y < y1; y++) {
    const py = y + 0.5;
    for (let x = x0; x < x1; x++) {
      const px = x + 0.5;
      let t = len2 > 0 ? ((px - a.x) * dx + (py - a.y) * dy) / len2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const ex = px - (a.x + t * dx);
      const ey = py - (a.y + t * dy);
      if (ex * ex + ey * ey <= r2) {
        mask.data[y * mask.width + x] = value;
        touched = true;
        if (x < tx0) tx0 = x;
        if (x >= tx1) tx1 = x + 1;
        if (y < ty0) ty0 = y;
        if (y >= ty1) ty1 = y + 1;
      }
    }
  }
  // A size-1 brush on a point between pixel centres still paints the pixel under it.
  if (!touched) {
    const x = Math.floor(b.x);
    const y = Math.floor(b.y);
    if (x < 0 || y < 0 || x >= mask.width || y >= mask.height) return;
    mask.data[y * mask.width + x] = value;
    growBox(box, x, y, x + 1, y + 1);
    return;
  }
  growBox(box, tx0, ty0, tx1, ty1);
}

/** Fills a closed polygon (even-odd rule, sampled at pixel centres). */
export function fillPolygon(mask: MaskImage, points: Point[], value: number, box: Box): void {
  fillRings(mask, [points], value, box);
}

/**
 * Fills several closed rings together under the even-odd rule (sampled at pixel centres): an outer ring with
 * its holes fills exactly the region between them.
 */
export function fillRings(mask: MaskImage, rings: Point[][], value: number, box: Box): void {
  const used = rings.filter((r) => r.length >= 3);
  if (used.length === 0) return;
  let minY = Infinity;
  let maxY = -Infinity;
  for (const ring of used) {
    for (const p of ring) {
      minY = Math.min(minY, p.y);
      maxY = Math.max(maxY, p.y);
    }
  }
  const yStart = Math.max(0, Math.ceil(minY - 0.5));
  const yEnd = Math.min(mask.height - 1, Math.floor(maxY - 0.5));
  const xs: number[] = [];
  for (let y = yStart; y <= yEnd; y++) {
    const py = y + 0.5;
    xs.length = 0;
    for (const points of used) {
      for (let i = 0; i < points.length; i++) {
        const p = points[i];
        const q = points[(i + 1) % points.length];
        // Half-open rule: an edge counts when py is in [min, max), so shared vertices count once.
        if ((p.y <= py && q.y > py) || (q.y <= py && p.y > py)) xs.push(p.x + ((py - p.y) / (q.y - p.y)) * (q.x - p.x));
      }
    }
    xs.sort((u, v) => u - v);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const xa = Math.max(0, Math.ceil(xs[k] - 0.5));
      const xb = Math.min(mask.width - 1, Math.floor(xs[k + 1] - 0.5));
      if (xb < xa) continue;
      mask.data.fill(value, y * mask.width + xa, y * mask.width + xb + 1);
      growBox(box, xa, y, xb + 1, y + 1);
    }
  }
}

/** A set of pixels (1 = in) with its bounding box. */
export interface Selection {
  width: number;
  height: number;
  inside: Uint8Array;
  box: Box;
  count: number;
}

function floodSelect(
  width: number,
  height: number,
  seedX: number,
  seedY: number,
  accept: (index: number) => boolean,
): Selection {
  const inside = new Uint8Array(width * height);
  const box: Box = { x0: seedX, y0: seedY, x1: seedX + 1, y1: seedY + 1 };
  let count = 0;
  if (seedX < 0 || seedY < 0 || seedX >= width || seedY >= height || !accept(seedY * width + seedX)) {
    return { width, height, inside, box: { x0: 0, y0: 0, x1: 0, y1: 0 }, count };
  }
  // Scanline flood fill (4-connected): an explicit stack of seeds, no recursion, fine on 4096x4096.
  const stack: number[] = [seedY * width + seedX];
  while (stack.length > 0) {
    const start = stack.pop()!;
    if (inside[start]) continue;
    const y = Math.floor(start / width);
    const row = y * width;
    let xl = start - row;
    let xr = xl;
    while (xl > 0 && !inside[row + xl - 1] && accept(row + xl - 1)) xl--;
    while (xr < width - 1 && !inside[row + xr + 1] && accept(row + xr + 1)) xr++;
    for (let x = xl; x <= xr; x++) inside[row + x] = 1;
    count += xr - xl + 1;
    growBox(box, xl, y, xr + 1, y + 1);
    for (const ny of [y - 1, y + 1]) {
      if (ny < 0 || ny >= height) continue;
      const nrow = ny * width;
      let inRun = false;
      for (let x = xl; x <= xr; x++) {
        const i = nrow + x;
        const ok = !inside[i] && accept(i);
        if (ok && !inRun) stack.push(i);
        inRun = ok;
      }
    }
  }
  return { width, height, inside, box, count };
}

/**
 * Magic wand: the 4-connected region around the seed whose colour differs from the seed's by at most
 * `tolerance` in every channel (0-255), within `radius` pixels of the seed (Euclidean; default: anywhere).
 * `pixels` has `channels` interleaved bytes per pixel (RGB or RGBA; alpha is not compared).
 */
export function colourRegion(
  pixels: Uint8Array | Uint8ClampedArray,
  channels: number,
  width: number,
  height: number,
  seed: Point,
  tolerance: number,
  radius = Infinity,
): Selection {
  const sx = Math.floor(seed.x);
  const sy = Math.floor(seed.y);
  const s = (sy * width + sx) * channels;
  const r = pixels[s];
  const g = pixels[s + 1];
  const b = pixels[s + 2];
  const reach = radius * radius;
  return floodSelect(width, height, sx, sy, (i) => {
    const o = i * channels;
    if (reach !== Infinity) {
      const dx = (i % width) - sx;
      const dy = Math.floor(i / width) - sy;
      if (dx * dx + dy * dy > reach) return false;
    }
    return (
      Math.abs(pixels[o] - r) <= tolerance &&
      Math.abs(pixels[o + 1] - g) <= tolerance &&
      Math.abs(pixels[o + 2] - b) <= tolerance
    );
  });
}

/** The 4-connected region of equal labels around the seed (for accepting one suggested object). */
export function labelRegion(labels: MaskImage, seed: Point): Selection {
  const sx = Math.floor(seed.x);
  const sy = Math.floor(seed.y);
  const inRange = sx >= 0 && sy >= 0 && sx < labels.width && sy < labels.height;
  const value = inRange ? labels.data[sy * labels.width + sx] : -1;
  return floodSelect(labels.width, labels.height, sx, sy, (i) => labels.data[i] === value);
}

/** Writes `value` (or, with `from`, the labels of `from`) into every selected pixel. */
export function paintSelection(mask: MaskImage, selection: Selection, value: number | MaskImage, box: Box): void {
  const { x0, y0, x1, y1 } = selection.box;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = y * mask.width + x;
      if (selection.inside[i]) mask.data[i] = typeof value === 'number' ? value : value.data[i];
    }
  }
  if (selection.count > 0) growBox(box, x0, y0, x1, y1);
}
