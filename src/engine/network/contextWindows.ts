// The windows the context head is fitted on: windows that cover a whole image, and a window resized (pixels
// bilinearly, labels by nearest neighbour). Pure: no tensors.
import type { MaskImage, RgbImage } from '../../masks/maskImage';

/**
 * A window of an image and its mask resized by `scale`: the image bilinearly (half-pixel centres, as the
 * network's own resizing), the mask by nearest neighbour (labels never blend).
 */
export function scaledWindow(
  image: RgbImage,
  mask: MaskImage,
  window: { x0: number; y0: number; w: number; h: number },
  scale: number,
): { image: RgbImage; mask: MaskImage } {
  const { x0, y0, w, h } = window;
  const sw = Math.max(1, Math.round(w * scale));
  const sh = Math.max(1, Math.round(h * scale));
  const data = new Uint8Array(sw * sh * 3);
  const labels = new Uint8Array(sw * sh);
  const source = (i: number, n: number, size: number): { lo: number; hi: number; t: number; near: number } => {
    const f = Math.min(n - 1, Math.max(0, ((i + 0.5) * n) / size - 0.5));
    const lo = Math.floor(f);
    return { lo, hi: Math.min(n - 1, lo + 1), t: f - lo, near: Math.min(n - 1, Math.floor(((i + 0.5) * n) / size)) };
  };
  for (let y = 0; y < sh; y++) {
    const sy = source(y, h, sh);
    for (let x = 0; x < sw; x++) {
      const sx = source(x, w, sw);
      const at = (yy: number, xx: number, c: number): number => image.data[((y0 + yy) * image.width + x0 + xx) * 3 + c];
      for (let c = 0; c < 3; c++) {
        const top = at(sy.lo, sx.lo, c) * (1 - sx.t) + at(sy.lo, sx.hi, c) * sx.t;
        const bottom = at(sy.hi, sx.lo, c) * (1 - sx.t) + at(sy.hi, sx.hi, c) * sx.t;
        data[(y * sw + x) * 3 + c] = Math.round(top * (1 - sy.t) + bottom * sy.t);
      }
      labels[y * sw + x] = mask.data[(y0 + sy.near) * mask.width + x0 + sx.near];
    }
  }
  return { image: { width: sw, height: sh, data }, mask: { width: sw, height: sh, data: labels } };
}

/**
 * Windows of at most `size` pixels a side that together cover a width x height image: one when it fits, else a
 * grid of evenly spread windows, the first at the image's near edge and the last flush with its far edge.
 * Reading one window of a larger image missed its objects (a car at the right border of a 1000x563 frame) and
 * fitted the head to background alone.
 */
export function coveringWindows(
  width: number,
  height: number,
  size: number,
): { x0: number; y0: number; w: number; h: number }[] {
  const origins = (n: number): number[] => {
    if (n <= size) return [0];
    const count = Math.ceil(n / size);
    const last = n - size;
    // Evenly spread, so neighbours overlap by less than a window and never leave a gap.
    return Array.from({ length: count }, (_, i) => Math.round((i * last) / (count - 1)));
  };
  const w = Math.min(width, size);
  const h = Math.min(height, size);
  return origins(height).flatMap((y0) => origins(width).map((x0) => ({ x0, y0, w, h })));
}
