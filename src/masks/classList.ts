import { InputError } from './inputError';
import { IGNORE_INDEX, type MaskImage } from './maskImage';

export interface ClassInfo {
  index: number;
  name: string;
  /** #rrggbb */
  color: string;
}

/** The classes of a project: index 0 is background; 255 (ignore) is never a class. */
export interface ClassList {
  classes: ClassInfo[];
}

/** Pascal VOC's colour map: the colours people expect for class indices. */
export function vocColor(index: number): string {
  let r = 0;
  let g = 0;
  let b = 0;
  let c = index;
  for (let j = 0; j < 8; j++) {
    r |= ((c >> 0) & 1) << (7 - j);
    g |= ((c >> 1) & 1) << (7 - j);
    b |= ((c >> 2) & 1) << (7 - j);
    c >>= 3;
  }
  return '#' + [r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('');
}

/**
 * Parses labelme's labels.txt convention: one name a line; `__ignore__` names the ignore value (255)
 * and takes no index; `_background_` is 0; the names that follow are 1, 2, ... A line may end with a
 * colour (`cat #ff8800`). Blank lines and lines starting with # are skipped.
 */
export function parseClassList(text: string, file: string): ClassList {
  const classes: ClassInfo[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, lineNo) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^(.*?)(?:\s+(#[0-9a-fA-F]{6}))?$/.exec(line);
    const name = (m?.[1] ?? line).trim();
    if (name === '__ignore__') return;
    if (seen.has(name)) throw new InputError(file, `line ${lineNo + 1}: class "${name}" is listed twice`);
    if (classes.length === 0 && name !== '_background_') {
      throw new InputError(file, `line ${lineNo + 1}: the first class must be _background_ (index 0), got "${name}"`);
    }
    seen.add(name);
    const index = classes.length;
    if (index >= IGNORE_INDEX) throw new InputError(file, `more than ${IGNORE_INDEX - 1} classes`);
    classes.push({ index, name, color: m?.[2]?.toLowerCase() ?? vocColor(index) });
  });
  if (classes.length < 2) throw new InputError(file, 'a class list needs _background_ and at least one class');
  return { classes };
}

/** Absent a list: classes 0..max index seen in the masks, named by number. */
export function classListFromMasks(masks: MaskImage[]): ClassList {
  let max = 1;
  for (const m of masks)
    for (let i = 0; i < m.data.length; i++) if (m.data[i] !== IGNORE_INDEX && m.data[i] > max) max = m.data[i];
  const classes: ClassInfo[] = [];
  for (let i = 0; i <= max; i++)
    classes.push({ index: i, name: i === 0 ? '_background_' : `class_${i}`, color: vocColor(i) });
  return { classes };
}

/** Throws naming the file when a mask holds an index outside the class list. */
export function checkMaskClasses(mask: MaskImage, list: ClassList, file: string): void {
  const n = list.classes.length;
  for (let i = 0; i < mask.data.length; i++) {
    const v = mask.data[i];
    if (v !== IGNORE_INDEX && v >= n) {
      throw new InputError(
        file,
        `pixel ${i % mask.width},${Math.floor(i / mask.width)} has class ${v}, but the class list has ${n} classes (0-${n - 1}) and 255 = ignore`,
      );
    }
  }
}
