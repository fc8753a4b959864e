// Masks as people bring them: a value map (`--map 0=1,255=0`) that turns another tool's pixel values into
// maskloop's class indices, and the check that names a mask which cannot be what its author meant.
import { InputError } from './inputError';
import { IGNORE_INDEX, type MaskImage } from './maskImage';

/** What each of the 256 pixel values becomes; -1: the value is not in the map. */
export type ValueMap = Int16Array;

/**
 * Parses `from=to` pairs separated by commas (`0=1,255=0`); `to` is a class index 0-254 or 255 (ignore), or
 * `ignore`. Throws with the offending pair.
 */
export function parseValueMap(text: string): ValueMap {
  const map = new Int16Array(256).fill(-1);
  for (const raw of text.split(',')) {
    const pair = raw.trim();
    const m = /^(\d+)\s*=\s*(\d+|ignore)$/.exec(pair);
    const from = m ? Number(m[1]) : NaN;
    const to = m ? (m[2] === 'ignore' ? IGNORE_INDEX : Number(m[2])) : NaN;
    if (!m || from > 255 || to > 255)
      throw new Error(
        `--map: "${pair}" is not VALUE=CLASS with both 0-255 (CLASS may be "ignore"), e.g. --map 0=1,255=0`,
      );
    if (map[from] !== -1) throw new Error(`--map: value ${from} is mapped twice`);
    map[from] = to;
  }
  return map;
}

/** A mask with every value mapped; a value the map lacks is an error naming the file, the pixel and the fix. */
export function applyValueMap(mask: MaskImage, map: ValueMap, file: string): MaskImage {
  const data = new Uint8Array(mask.data.length);
  for (let i = 0; i < data.length; i++) {
    const v = map[mask.data[i]];
    if (v < 0)
      throw new InputError(
        file,
        `pixel ${i % mask.width},${Math.floor(i / mask.width)} has value ${mask.data[i]}, which --map does not list; add it (${mask.data[i]}=CLASS, or ${mask.data[i]}=ignore)`,
      );
    data[i] = v;
  }
  return { width: mask.width, height: mask.height, data };
}

/**
 * Throws when a mask cannot be a person's labels in maskloop's convention: every pixel ignore (255), or only
 * 0 and 255, which is how many data sets store a binary mask (0 = background, 255 = object) and which
 * maskloop would read as background and "ignore", with no object at all.
 */
export function checkMaskUsable(mask: MaskImage, file: string): void {
  let ignored = 0;
  for (let i = 0; i < mask.data.length; i++) {
    const v = mask.data[i];
    if (v === IGNORE_INDEX) ignored++;
    else if (v !== 0) return;
  }
  const fix = `convert the folder once: maskloop import --from masks MASKS_DIR --to NEW_DIR --map 0=0,255=1 (or the mapping the data set documents, e.g. 0=1,255=0)`;
  if (ignored === mask.data.length)
    throw new InputError(
      file,
      `every pixel is 255, which maskloop reads as "ignore": nothing to learn or measure. If 255 means an object here, ${fix}`,
    );
  if (ignored > 0)
    throw new InputError(
      file,
      `the mask holds only 0 and 255; maskloop reads 255 as "ignore", so this mask has no object pixels. If it is a binary mask stored as 0/255, ${fix}`,
    );
}
