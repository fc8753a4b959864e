// YOLO segmentation labels (Ultralytics): one line per object, `class x1 y1 x2 y2 ...`, coordinates
// normalised to 0..1 by the image size; class ids count from 0 with no background, so YOLO class k is
// maskloop class k + 1.
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { ClassInfo } from '../masks/classList';
import { emptyMask, IGNORE_INDEX, type MaskImage } from '../masks/maskImage';
import { emptyBox } from '../masks/maskDiff';
import { fillRings, type Point } from '../masks/rasterTools';
import { maskRegions } from './contours';
import type { Skipped } from './formatTypes';

/** Class names from a data.yaml (`names` as a list or as an {id: name} map). */
export function parseDataYaml(text: string, file: string): string[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new Error(`${file}: not valid YAML (${(err as Error).message.split('\n')[0]})`);
  }
  const names = (doc as { names?: unknown } | null)?.names;
  if (Array.isArray(names) && names.every((n) => typeof n === 'string')) return names;
  if (names && typeof names === 'object') {
    const entries = Object.entries(names as Record<string, unknown>).map(([k, v]) => [Number(k), v] as const);
    if (entries.every(([k, v]) => Number.isInteger(k) && k >= 0 && typeof v === 'string')) {
      const out: string[] = [];
      for (const [k, v] of entries) out[k] = v as string;
      if (out.some((v) => v === undefined) || out.length !== entries.length)
        throw new Error(`${file}: "names" ids must run 0, 1, 2, ...`);
      return out;
    }
  }
  throw new Error(`${file}: needs "names", a list of class names or a map from id to name`);
}

export function dataYaml(classes: ClassInfo[]): string {
  const names = classes.filter((c) => c.index > 0 && c.index < IGNORE_INDEX).sort((a, b) => a.index - b.index);
  names.forEach((c, i) => {
    if (c.index !== i + 1)
      throw new Error(`YOLO class ids must be contiguous: class ${c.index} "${c.name}" follows ${i}`);
  });
  return stringifyYaml({
    path: '.',
    train: 'images',
    val: 'images',
    names: Object.fromEntries(names.map((c, i) => [i, c.name])),
  });
}

/** Rasterises a YOLO label file onto a width x height mask, in line order. */
export function yoloToMask(
  text: string,
  file: string,
  width: number,
  height: number,
  classCount: number,
): { mask: MaskImage; skipped: Skipped[] } {
  const mask = emptyMask(width, height);
  const skipped: Skipped[] = [];
  text.split(/\r?\n/).forEach((line, n) => {
    const t = line.trim();
    if (!t) return;
    const where = `${file}:${n + 1}`;
    const parts = t.split(/\s+/).map(Number);
    const cls = parts[0];
    if (!Number.isInteger(cls) || cls < 0 || cls >= classCount) {
      skipped.push({
        item: where,
        why: `class ${t.split(/\s+/)[0]} is not one of the ${classCount} classes in data.yaml`,
      });
      return;
    }
    const coords = parts.slice(1);
    if (coords.length === 4) {
      skipped.push({ item: where, why: 'a detection box (class cx cy w h), not a segmentation polygon' });
      return;
    }
    if (coords.length < 6 || coords.length % 2 !== 0 || coords.some((v) => !Number.isFinite(v))) {
      skipped.push({ item: where, why: 'needs at least 3 normalised x y pairs' });
      return;
    }
    if (coords.some((v) => v < -0.01 || v > 1.01)) {
      skipped.push({ item: where, why: 'coordinates must be normalised to 0..1 (a value is outside the image)' });
      return;
    }
    const pts: Point[] = [];
    for (let i = 0; i < coords.length; i += 2) pts.push({ x: coords[i] * width, y: coords[i + 1] * height });
    fillRings(mask, [pts], cls + 1, emptyBox());
  });
  return { mask, skipped };
}

/** YOLO lines for a mask: one polygon per region's outer loop. Holes cannot be expressed and are counted. */
export function maskToYolo(
  mask: MaskImage,
  tolerance: number,
): { text: string; filledHoles: number; ignoredRegions: number } {
  const lines: string[] = [];
  let filledHoles = 0;
  let ignoredRegions = 0;
  const f = (v: number): string => String(Number(v.toFixed(6)));
  for (const r of maskRegions(mask, tolerance)) {
    if (r.classIndex === IGNORE_INDEX) {
      ignoredRegions++;
      continue;
    }
    filledHoles += r.holes.length;
    lines.push(
      [String(r.classIndex - 1), ...r.outer.flatMap((p) => [f(p.x / mask.width), f(p.y / mask.height)])].join(' '),
    );
  }
  return { text: lines.length ? lines.join('\n') + '\n' : '', filledHoles, ignoredRegions };
}
