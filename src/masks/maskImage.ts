/** A label map: one class index per pixel, row-major. 0 = background, 255 = ignore. */
export interface MaskImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** An RGB image, 8 bits per channel, row-major, interleaved. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export const IGNORE_INDEX = 255;

export function emptyMask(width: number, height: number): MaskImage {
  return { width, height, data: new Uint8Array(width * height) };
}

/** Nearest-neighbour resampling of a label map (labels must never blend). */
export function resizeMaskNearest(mask: MaskImage, width: number, height: number): MaskImage {
  const out = emptyMask(width, height);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(mask.height - 1, Math.floor(((y + 0.5) * mask.height) / height));
    for (let x = 0; x < width; x++) {
      const sx = Math.min(mask.width - 1, Math.floor(((x + 0.5) * mask.width) / width));
      out.data[y * width + x] = mask.data[sy * mask.width + sx];
    }
  }
  return out;
}
