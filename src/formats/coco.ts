// COCO instance annotations <-> maskloop masks. Pure: JSON objects in, masks out, and back.
import type { ClassInfo } from '../masks/classList';
import { emptyMask, IGNORE_INDEX, type MaskImage } from '../masks/maskImage';
import { maxPixels, PIXEL_LIMIT_HINT } from '../masks/pixelLimit';
import type { Point } from '../masks/rasterTools';
import { decodeRle, encodeRle, parseCocoRle, rleToString } from './cocoRle';
import { cocoPolygonCounts } from './cocoPolygon';
import { maskRegions } from './contours';
import { classIndexFor, type ImportedMask, type Skipped } from './formatTypes';

interface CocoImage {
  id: number;
  file_name: string;
  width: number;
  height: number;
}
interface CocoCategory {
  id: number;
  name: string;
  supercategory?: string;
}
interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  segmentation: number[][] | { size: [number, number]; counts: number[] | string };
  area: number;
  bbox: [number, number, number, number];
  iscrowd: 0 | 1;
}
export interface CocoDataset {
  info?: Record<string, unknown>;
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Rasterises every annotation of a COCO file into one index mask per image, in annotation order (later
 * annotations paint over earlier ones). Categories map to classes by name through `classes`; a category not in
 * the list is skipped with a reason, as is an annotation whose polygon leaves the image or whose RLE does not
 * match the image size.
 */
export function cocoToMasks(
  json: unknown,
  file: string,
  classes: ClassInfo[],
): { masks: ImportedMask[]; skipped: Skipped[] } {
  const source = cocoMaskSource(json, file, classes);
  const masks = [...source.masks()];
  return { masks, skipped: source.skipped };
}

/**
 * The same, one image at a time: the annotations are checked and grouped by image first (no pixels), then
 * `masks()` paints and yields each image's mask in the order of "images", so a caller that writes each mask
 * before taking the next holds one mask in memory, not one per image. Annotations whose segmentation turns
 * out bad are added to `skipped` while `masks()` runs.
 */
export function cocoMaskSource(
  json: unknown,
  file: string,
  classes: ClassInfo[],
): { total: number; skipped: Skipped[]; masks: () => Generator<ImportedMask> } {
  if (
    !isObject(json) ||
    !Array.isArray(json.images) ||
    !Array.isArray(json.annotations) ||
    !Array.isArray(json.categories)
  ) {
    throw new Error(`${file}: not a COCO file (needs "images", "annotations" and "categories" lists)`);
  }
  const skipped: Skipped[] = [];
  const categories = new Map<number, string>();
  for (const c of json.categories as unknown[])
    if (isObject(c) && typeof c.id === 'number' && typeof c.name === 'string') categories.set(c.id, c.name);
  const images: CocoImage[] = [];
  const byImage = new Map<number, { where: string; value: number; seg: unknown }[]>();
  for (const [i, im] of (json.images as unknown[]).entries()) {
    if (
      !isObject(im) ||
      typeof im.id !== 'number' ||
      typeof im.file_name !== 'string' ||
      !Number.isInteger(im.width) ||
      !Number.isInteger(im.height) ||
      (im.width as number) <= 0 ||
      (im.height as number) <= 0
    ) {
      skipped.push({
        item: `${file} images[${i}]`,
        why: 'needs a numeric id, a file_name and a positive width and height',
      });
      continue;
    }
    const image = im as unknown as CocoImage;
    if (image.width * image.height > maxPixels()) {
      skipped.push({
        item: `${file} images[${i}] (${image.file_name})`,
        why: `${image.width}x${image.height} is over the pixel limit of ${maxPixels()}; ${PIXEL_LIMIT_HINT}`,
      });
      continue;
    }
    images.push(image);
    byImage.set(image.id, []);
  }
  for (const [i, raw] of (json.annotations as unknown[]).entries()) {
    const where = `${file} annotations[${i}]${isObject(raw) && raw.id !== undefined ? ` (id ${String(raw.id)})` : ''}`;
    if (!isObject(raw)) {
      skipped.push({ item: where, why: 'not an object' });
      continue;
    }
    const target = byImage.get(raw.image_id as number);
    if (!target) {
      skipped.push({ item: where, why: `image_id ${String(raw.image_id)} is not in "images"` });
      continue;
    }
    if (typeof raw.category_id !== 'number') {
      skipped.push({
        item: where,
        why: `category_id must be a number, got ${raw.category_id === undefined ? 'none' : `${typeof raw.category_id} ${JSON.stringify(raw.category_id)}`}`,
      });
      continue;
    }
    const name = categories.get(raw.category_id);
    if (name === undefined) {
      skipped.push({ item: where, why: `category_id ${String(raw.category_id)} is not in "categories"` });
      continue;
    }
    const value = classIndexFor(name, classes);
    if (value === null) {
      skipped.push({ item: where, why: `category "${name}" is not in the class list` });
      continue;
    }
    target.push({ where, value, seg: raw.segmentation });
  }
  function* masks(): Generator<ImportedMask> {
    for (const image of images) {
      const mask = emptyMask(image.width, image.height);
      for (const { where, value, seg } of byImage.get(image.id) ?? []) {
        try {
          paintSegmentation(mask, seg, value, where);
        } catch (err) {
          skipped.push({ item: where, why: (err as Error).message.replace(`${where}: `, '') });
        }
      }
      yield { imageName: image.file_name, mask };
    }
  }
  return { total: images.length, skipped, masks };
}

/** Paints one annotation's segmentation (polygons, as pycocotools fills them, or an RLE) with `value`. */
function paintSegmentation(mask: MaskImage, seg: unknown, value: number, where: string): void {
  if (Array.isArray(seg)) {
    const rings: Point[][] = seg.map((poly, k) => {
      if (
        !Array.isArray(poly) ||
        poly.length < 6 ||
        poly.length % 2 !== 0 ||
        !poly.every((n) => typeof n === 'number' && Number.isFinite(n))
      )
        throw new Error(`polygon ${k} must be a flat list of at least 3 x, y pairs`);
      const pts: Point[] = [];
      for (let j = 0; j < poly.length; j += 2) pts.push({ x: poly[j], y: poly[j + 1] });
      const outside = pts.find((p) => p.x < -1 || p.y < -1 || p.x > mask.width + 1 || p.y > mask.height + 1);
      if (outside)
        throw new Error(
          `polygon ${k} has the point (${outside.x}, ${outside.y}) outside the ${mask.width}x${mask.height} image`,
        );
      return pts;
    });
    // COCO polygons of one annotation are a union: each is filled on its own, as pycocotools fills it.
    for (const ring of rings) {
      const inside = decodeRle({
        size: [mask.height, mask.width],
        counts: cocoPolygonCounts(
          ring.flatMap((q) => [q.x, q.y]),
          mask.height,
          mask.width,
        ),
      });
      for (let q = 0; q < inside.length; q++) if (inside[q]) mask.data[q] = value;
    }
  } else if (isObject(seg)) {
    const rle = parseCocoRle(seg, where);
    if (rle.size[0] !== mask.height || rle.size[1] !== mask.width)
      throw new Error(
        `RLE size ${rle.size[0]}x${rle.size[1]} (height x width) does not match the image ${mask.height}x${mask.width}`,
      );
    const inside = decodeRle(rle);
    for (let p = 0; p < inside.length; p++) if (inside[p]) mask.data[p] = value;
  } else {
    throw new Error('"segmentation" must be polygons or an RLE object');
  }
}

export interface CocoExportOptions {
  /** Polygon tolerance in pixels (0 = exact). */
  tolerance: number;
  /** 'polygon': polygons, except regions with holes, which become RLE; 'rle': every region as RLE. */
  segmentation: 'polygon' | 'rle';
}

/**
 * One COCO annotation per connected region per class (semantic masks carry no instance ids). Category ids are
 * the class indices, so they stay stable across exports. Ignore pixels (255) are not annotations in COCO and
 * are counted in `ignoredRegions`.
 */
export function masksToCoco(
  items: { imageName: string; mask: MaskImage }[],
  classes: ClassInfo[],
  options: CocoExportOptions,
): { dataset: CocoDataset; ignoredRegions: number; rleRegions: number } {
  const dataset: CocoDataset = {
    info: { description: 'exported by maskloop', date_created: new Date().toISOString() },
    images: [],
    annotations: [],
    categories: classes
      .filter((c) => c.index !== 0 && c.index !== IGNORE_INDEX)
      .map((c) => ({ id: c.index, name: c.name, supercategory: 'object' })),
  };
  let ignoredRegions = 0;
  let rleRegions = 0;
  let annId = 1;
  items.forEach((item, i) => {
    const { mask } = item;
    const imageId = i + 1;
    dataset.images.push({ id: imageId, file_name: item.imageName, width: mask.width, height: mask.height });
    for (const r of maskRegions(mask, options.tolerance)) {
      if (r.classIndex === IGNORE_INDEX) {
        ignoredRegions++;
        continue;
      }
      const bbox: [number, number, number, number] = [r.box.x0, r.box.y0, r.box.x1 - r.box.x0, r.box.y1 - r.box.y0];
      let segmentation: CocoAnnotation['segmentation'];
      if (options.segmentation === 'rle' || r.holes.length > 0) {
        const rle = encodeRle(r.selection.inside, mask.width, mask.height);
        segmentation = { size: rle.size, counts: rleToString(rle.counts) };
        rleRegions++;
      } else {
        segmentation = [r.outer.flatMap((p) => [p.x, p.y])];
      }
      dataset.annotations.push({
        id: annId++,
        image_id: imageId,
        category_id: r.classIndex,
        segmentation,
        area: r.area,
        bbox,
        iscrowd: 0,
      });
    }
  });
  return { dataset, ignoredRegions, rleRegions };
}
