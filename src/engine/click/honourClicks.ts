// Clicks the decoder ignored: a positive click outside its answer, or a negative one inside it, still changes
// the answer there. The pixels around such a click whose colour is close to the clicked pixel's (a magic wand
// bounded by a disc around the click) are added or removed, so no click is lost on a region the decoder will
// not draw (thin poles, a tree's edge). Pure.
import type { RgbImage } from '../../masks/maskImage';

export interface HonourSettings {
  /** The local region's reach from the click, in pixels. */
  radius: number;
  /** The largest difference from the clicked pixel's colour in any channel (0-255). */
  tolerance: number;
}

/** Chosen on street-1hz frames 1-6 (docs/benchmarks.md, "Click segmentation": how the clicks were honoured). */
export const HONOUR: HonourSettings = { radius: 4, tolerance: 16 };

export interface ClickPoint {
  x: number;
  y: number;
  positive: boolean;
}

/**
 * The answer with every click it contradicts honoured locally, later clicks last (so they win where two
 * regions meet). Returns the answer itself when it contradicts no click, else a changed copy.
 */
export function honourClicks(
  answer: Uint8Array,
  image: RgbImage,
  points: readonly ClickPoint[],
  s: HonourSettings,
): Uint8Array {
  const { width, height, data } = image;
  let out = answer;
  for (const p of points) {
    const sx = Math.min(width - 1, Math.max(0, Math.floor(p.x)));
    const sy = Math.min(height - 1, Math.max(0, Math.floor(p.y)));
    const want = p.positive ? 1 : 0;
    if ((out[sy * width + sx] ? 1 : 0) === want) continue;
    if (out === answer) out = answer.slice();
    const r = Math.max(0, Math.floor(s.radius));
    const x0 = Math.max(0, sx - r);
    const x1 = Math.min(width - 1, sx + r);
    const y0 = Math.max(0, sy - r);
    const y1 = Math.min(height - 1, sy + r);
    const w = x1 - x0 + 1;
    const seen = new Uint8Array(w * (y1 - y0 + 1));
    const s0 = (sy * width + sx) * 3;
    const close = (x: number, y: number): boolean => {
      if ((x - sx) * (x - sx) + (y - sy) * (y - sy) > r * r) return false;
      const o = (y * width + x) * 3;
      return (
        Math.abs(data[o] - data[s0]) <= s.tolerance &&
        Math.abs(data[o + 1] - data[s0 + 1]) <= s.tolerance &&
        Math.abs(data[o + 2] - data[s0 + 2]) <= s.tolerance
      );
    };
    // 4-connected flood from the click over the disc's pixels of a close colour.
    const stack = [sx, sy];
    seen[(sy - y0) * w + (sx - x0)] = 1;
    while (stack.length > 0) {
      const y = stack.pop()!;
      const x = stack.pop()!;
      out[y * width + x] = want;
      for (const [nx, ny] of [
        [x - 1, y],
        [x + 1, y],
        [x, y - 1],
        [x, y + 1],
      ]) {
        if (nx < x0 || nx > x1 || ny < y0 || ny > y1) continue;
        const k = (ny - y0) * w + (nx - x0);
        if (seen[k] || !close(nx, ny)) continue;
        seen[k] = 1;
        stack.push(nx, ny);
      }
    }
  }
  return out;
}
