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
export const BACKGROUND_INDEX = 0;

export function emptyMask(width: number, height: number): MaskImage {
  return { width, height, data: new Uint8Array(width * height) };
}

/** Sorted distinct class indices present in a mask, ignore excluded. */
export function classesPresent(mask: MaskImage): number[] {
  const seen = new Uint8Array(256);
  for (let i = 0; i < mask.data.length; i++) seen[mask.data[i]] = 1;
  const out: number[] = [];
  for (let c = 0; c < 255; c++) if (seen[c]) out.push(c);
  return out;
}
