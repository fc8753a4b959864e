// Clicks the decoder ignored: a positive click outside its answer, or a negative one inside it, still changes
// the answer there. The pixels around such a click whose colour is close to the clicked pixel's (the magic
// wand's region, bounded by a disc around the click) are added or removed, so no click is lost on a region the decoder will
// not draw (thin poles, a tree's edge). Pure.
import type { RgbImage } from '../../masks/maskImage';
import { colourRegion } from '../../masks/rasterTools';

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
    // The magic wand's region around the click, bounded by a disc.
    const sel = colourRegion(data, 3, width, height, { x: sx, y: sy }, s.tolerance, s.radius);
    for (let y = sel.box.y0; y < sel.box.y1; y++)
      for (let i = y * width + sel.box.x0; i < y * width + sel.box.x1; i++) if (sel.inside[i]) out[i] = want;
  }
  return out;
}
