// Pascal VOC segmentation: palette PNGs whose palette index is the class (SegmentationClass) or the object
// (SegmentationObject), with the VOC colour map; 255 is the "void" border, kept as ignore.
import { encode } from 'fast-png';
import { vocColor } from '../masks/classList';
import { IGNORE_INDEX, type MaskImage } from '../masks/maskImage';
import { maskRegions } from './contours';

/** The 256-entry VOC colour map (index 255 is VOC's cream "void" colour). */
export function vocPalette(): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let i = 0; i < 256; i++) {
    const c = vocColor(i);
    out.push([parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16)]);
  }
  return out;
}

/** A VOC palette PNG of an index map. */
export function encodeVocPng(indices: MaskImage): Uint8Array {
  return encode({
    width: indices.width,
    height: indices.height,
    data: indices.data,
    depth: 8,
    channels: 1,
    palette: vocPalette(),
  });
}

/** SegmentationObject: each connected region of each class an object id 1, 2, ... (255 stays 255). */
export function objectMap(mask: MaskImage): { objects: MaskImage; count: number } {
  const objects: MaskImage = { width: mask.width, height: mask.height, data: new Uint8Array(mask.data.length) };
  let id = 0;
  for (const r of maskRegions(mask)) {
    const value = r.classIndex === IGNORE_INDEX ? IGNORE_INDEX : Math.min(254, ++id);
    const { x0, y0, x1, y1 } = r.box;
    for (let y = y0; y < y1; y++)
      for (let x = x0; x < x1; x++)
        if (r.selection.inside[y * mask.width + x]) objects.data[y * mask.width + x] = value;
  }
  return { objects, count: id };
}
