// What every format's import and export share.
import { vocColor, type ClassInfo } from '../masks/classList';
import { IGNORE_INDEX, type MaskImage } from '../masks/maskImage';

export type FormatName = 'coco' | 'labelme' | 'voc' | 'yolo';
export const FORMATS: readonly FormatName[] = ['coco', 'labelme', 'voc', 'yolo'];
/** What `import` reads: a format, or plain mask PNGs whose values a map renumbers (binary 0/255 masks). */
export type ImportSource = FormatName | 'masks';
export const IMPORT_SOURCES: readonly ImportSource[] = [...FORMATS, 'masks'];

export interface ImportedMask {
  /** The image's file name as the source names it (its stem names the mask written). */
  imageName: string;
  mask: MaskImage;
}

/** Something left out, and why: every import and export reports these, none is dropped silently. */
export interface Skipped {
  item: string;
  why: string;
  /** Set where skipping is expected (an image not labelled yet), not a bad item: the command still exits 0. */
  expected?: boolean;
}

/** Skipped items that were bad input or in the way: a batch with any of them exits 1 once the rest is done. */
export function failedItems(skipped: Skipped[]): Skipped[] {
  return skipped.filter((s) => !s.expected);
}

const BACKGROUND_NAMES = new Set(['_background_', 'background', '__background__']);
const IGNORE_NAMES = new Set(['__ignore__', 'ignore']);

/** The class index of a label name: background names are 0, ignore names 255, else the list's entry, or null. */
export function classIndexFor(name: string, classes: ClassInfo[]): number | null {
  const hit = classes.find((c) => c.name === name);
  if (hit) return hit.index;
  if (BACKGROUND_NAMES.has(name)) return 0;
  if (IGNORE_NAMES.has(name)) return IGNORE_INDEX;
  return null;
}

/** A class list from names in order of first appearance: background 0, then 1, 2, ... (background and ignore names excluded). */
export function classListFromNames(names: Iterable<string>): ClassInfo[] {
  const out: ClassInfo[] = [{ index: 0, name: '_background_', color: vocColor(0) }];
  for (const n of names) {
    if (BACKGROUND_NAMES.has(n) || IGNORE_NAMES.has(n) || out.some((c) => c.name === n)) continue;
    if (out.length >= IGNORE_INDEX) throw new Error(`more than 254 classes (at "${n}")`);
    out.push({ index: out.length, name: n, color: vocColor(out.length) });
  }
  return out;
}

/** labels.txt text for a class list (labelme's convention, readable by parseClassList). */
export function classListText(classes: ClassInfo[]): string {
  const lines = ['__ignore__'];
  const sorted = [...classes].sort((a, b) => a.index - b.index);
  for (let i = 0; i < sorted.length; i++) {
    if (sorted[i].index !== i)
      throw new Error(`class indices must run 0, 1, 2, ... (found ${sorted[i].index} at position ${i})`);
    lines.push(i === 0 ? '_background_' : `${sorted[i].name} ${sorted[i].color}`);
  }
  return lines.join('\n') + '\n';
}

/** The name a class index goes by in label-name formats. */
export function classNameFor(index: number, classes: ClassInfo[]): string {
  if (index === 0) return '_background_';
  if (index === IGNORE_INDEX) return '__ignore__';
  return classes.find((c) => c.index === index)?.name ?? `class_${index}`;
}
