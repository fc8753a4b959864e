// labelme JSON (as labelme 5 writes it) <-> maskloop masks. Pure: the PNG inside `mask` shapes is decoded
// with fast-png, which runs anywhere.
import { decode } from 'fast-png';
import type { ClassInfo } from '../masks/classList';
import { emptyMask, type MaskImage } from '../masks/maskImage';
import { checkPixelCount } from '../masks/pixelLimit';
import type { Point } from '../masks/rasterTools';
import { pilFillEllipse, pilFillPolygon, pilFillRectangle, pilWideLine } from './pilDraw';
import { maskRegions, pixelCentreLoop } from './contours';
import { classIndexFor, classNameFor, type Skipped } from './formatTypes';

export interface LabelmeShape {
  label: string;
  points: [number, number][];
  group_id: number | null;
  description?: string;
  shape_type: 'polygon' | 'rectangle' | 'circle' | 'line' | 'linestrip' | 'point' | 'mask';
  flags: Record<string, boolean>;
  mask?: string | null;
}

export interface LabelmeFile {
  version: string;
  flags: Record<string, boolean>;
  shapes: LabelmeShape[];
  imagePath: string;
  imageData: string | null;
  imageHeight: number;
  imageWidth: number;
}

/** labelme's default widths when it turns lines and points into masks (shape_to_mask). */
const LINE_WIDTH = 10;
const POINT_RADIUS = 5;

/** The labels a labelme file uses, in order (to build a class list when none is given). */
export function labelmeLabels(json: unknown): string[] {
  const shapes = (json as { shapes?: unknown }).shapes;
  return Array.isArray(shapes)
    ? shapes.map((s) => (s as { label?: unknown }).label).filter((l): l is string => typeof l === 'string')
    : [];
}

/** Rasterises a labelme file's shapes, in file order (later shapes paint over earlier ones). */
export function labelmeToMask(
  json: unknown,
  file: string,
  classes: ClassInfo[],
): { imagePath: string; mask: MaskImage; skipped: Skipped[] } {
  const j = json as Partial<LabelmeFile>;
  if (typeof j !== 'object' || j === null || !Array.isArray(j.shapes))
    throw new Error(`${file}: not a labelme file (no "shapes" list)`);
  if (!Number.isInteger(j.imageWidth) || !Number.isInteger(j.imageHeight) || j.imageWidth! <= 0 || j.imageHeight! <= 0)
    throw new Error(`${file}: "imageWidth" and "imageHeight" must be positive integers`);
  checkPixelCount(j.imageWidth!, j.imageHeight!, file);
  const mask = emptyMask(j.imageWidth!, j.imageHeight!);
  const skipped: Skipped[] = [];
  j.shapes.forEach((shape, i) => {
    const where = `${file} shapes[${i}]${shape && typeof shape.label === 'string' ? ` ("${shape.label}")` : ''}`;
    try {
      if (typeof shape !== 'object' || shape === null || typeof shape.label !== 'string')
        throw new Error('needs a "label"');
      const value = classIndexFor(shape.label, classes);
      if (value === null) throw new Error(`label "${shape.label}" is not in the class list`);
      if (shape.points !== undefined && !Array.isArray(shape.points))
        throw new Error('"points" must be a list of [x, y] pairs');
      const pts = (shape.points ?? []).map((p, k) => {
        if (!Array.isArray(p) || p.length !== 2 || !p.every((n) => typeof n === 'number' && Number.isFinite(n)))
          throw new Error(`point ${k} is not [x, y]`);
        if (p[0] < -1 || p[1] < -1 || p[0] > mask.width + 1 || p[1] > mask.height + 1)
          throw new Error(`point ${k} (${p[0]}, ${p[1]}) is outside the ${mask.width}x${mask.height} image`);
        return { x: p[0], y: p[1] };
      });
      const need = (n: number): void => {
        if (pts.length < n) throw new Error(`a ${shape.shape_type} needs at least ${n} points, it has ${pts.length}`);
      };
      switch (shape.shape_type ?? 'polygon') {
        case 'polygon':
          // As labelme's shape_to_mask draws it: Pillow's polygon fill (pilDraw.ts), its edge pixels included.
          need(3);
          pilFillPolygon(mask, pts, value);
          break;
        case 'rectangle':
          need(2);
          pilFillRectangle(mask, pts[0], pts[1], value);
          break;
        case 'circle': {
          need(2);
          const d = Math.sqrt((pts[0].x - pts[1].x) ** 2 + (pts[0].y - pts[1].y) ** 2);
          pilFillEllipse(mask, { x0: pts[0].x - d, y0: pts[0].y - d, x1: pts[0].x + d, y1: pts[0].y + d }, value);
          break;
        }
        case 'line':
        case 'linestrip':
          need(2);
          pilWideLine(mask, shape.shape_type === 'line' ? pts.slice(0, 2) : pts, LINE_WIDTH, value);
          break;
        case 'point':
          need(1);
          pilFillEllipse(
            mask,
            {
              x0: pts[0].x - POINT_RADIUS,
              y0: pts[0].y - POINT_RADIUS,
              x1: pts[0].x + POINT_RADIUS,
              y1: pts[0].y + POINT_RADIUS,
            },
            value,
          );
          break;
        case 'mask': {
          need(2);
          if (typeof shape.mask !== 'string') throw new Error('a mask shape needs "mask" (a base64 PNG)');
          const png = decode(Buffer.from(shape.mask, 'base64'));
          const x0 = Math.round(Math.min(pts[0].x, pts[1].x));
          const y0 = Math.round(Math.min(pts[0].y, pts[1].y));
          const ch = png.channels;
          for (let y = 0; y < png.height; y++) {
            for (let x = 0; x < png.width; x++) {
              const mx = x0 + x;
              const my = y0 + y;
              if (mx < 0 || my < 0 || mx >= mask.width || my >= mask.height) continue;
              if (png.data[(y * png.width + x) * ch]) mask.data[my * mask.width + mx] = value;
            }
          }
          break;
        }
        default:
          throw new Error(`unknown shape_type "${String(shape.shape_type)}"`);
      }
    } catch (err) {
      skipped.push({ item: where, why: (err as Error).message });
    }
  });
  return { imagePath: typeof j.imagePath === 'string' ? j.imagePath : '', mask, skipped };
}

/**
 * A labelme file of polygons for a mask. Regions come largest first; each region's holes follow it as
 * `_background_` polygons, so rasterising in file order gives back the mask (regions inside holes come later).
 * Ignore pixels become `__ignore__` polygons.
 */
export function maskToLabelme(
  mask: MaskImage,
  imagePath: string,
  classes: ClassInfo[],
  tolerance: number,
): LabelmeFile {
  const shapes: LabelmeShape[] = [];
  const poly = (label: string, loop: Point[]): LabelmeShape => ({
    label,
    points: loop.map((p) => [p.x, p.y]),
    group_id: null,
    description: '',
    shape_type: 'polygon',
    flags: {},
    mask: null,
  });
  // Vertices on the boundary pixels' centres: labelme (Pillow) fills them back to exactly these pixels.
  for (const r of maskRegions(mask, tolerance, pixelCentreLoop)) {
    shapes.push(poly(classNameFor(r.classIndex, classes), r.outer));
    for (const h of r.holes) shapes.push(poly(classNameFor(0, classes), h));
  }
  return {
    version: '5.5.0',
    flags: {},
    shapes,
    imagePath,
    imageData: null,
    imageHeight: mask.height,
    imageWidth: mask.width,
  };
}
