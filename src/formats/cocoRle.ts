// COCO run-length encoding, as pycocotools reads and writes it: runs over the mask in column-major order
// (down each column, then the next column), starting with a run of zeros (possibly empty).

export interface Rle {
  /** [height, width], COCO's order. */
  size: [number, number];
  counts: number[];
}

/** Runs of a binary mask (row-major `inside`, 1 = in) in COCO's column-major order. */
export function encodeRle(inside: Uint8Array, width: number, height: number): Rle {
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const v = inside[y * width + x] ? 1 : 0;
      if (v !== current) {
        counts.push(run);
        run = 0;
        current = v;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [height, width], counts };
}

/** Row-major binary mask of an RLE; throws when the runs do not cover exactly height x width pixels. */
export function decodeRle(rle: Rle): Uint8Array {
  const [height, width] = rle.size;
  const total = rle.counts.reduce((a, b) => a + b, 0);
  if (total !== width * height)
    throw new Error(`RLE runs cover ${total} pixels, but its size ${height}x${width} has ${width * height}`);
  const out = new Uint8Array(width * height);
  let k = 0;
  let value = 0;
  for (const run of rle.counts) {
    if (!Number.isInteger(run) || run < 0) throw new Error(`RLE run ${run} is not a non-negative integer`);
    if (value) {
      for (let j = 0; j < run; j++) {
        const i = k + j;
        const x = Math.floor(i / height);
        const y = i - x * height;
        out[y * width + x] = 1;
      }
    }
    k += run;
    value ^= 1;
  }
  return out;
}

/**
 * pycocotools' compressed string form (rleToString): each count, after the third, as the difference from the
 * count two before it; each number in 5-bit groups, low first, 0x20 = more groups follow, sign from bit 0x10
 * of the last group; every group offset by 48 into printable ASCII.
 */
export function rleToString(counts: number[]): string {
  let s = '';
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i];
    if (i > 2) x -= counts[i - 2];
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x >>= 5;
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/** Inverse of rleToString (pycocotools' rleFrString). */
export function rleFromString(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error('compressed RLE ends in the middle of a number');
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new Error(`compressed RLE has a character outside '0'..'o' at ${p}`);
      // Arithmetic, not bit operators: seven groups are 35 bits, past JavaScript's 32-bit shifts.
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x -= 2 ** (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/** COCO segmentation RLE in either form ({counts: number[]} or {counts: string}). */
export function parseCocoRle(value: { size?: unknown; counts?: unknown }, where: string): Rle {
  const size = value.size;
  if (!Array.isArray(size) || size.length !== 2 || !size.every((n) => Number.isInteger(n) && n > 0))
    throw new Error(`${where}: RLE "size" must be [height, width]`);
  const counts = typeof value.counts === 'string' ? rleFromString(value.counts) : value.counts;
  if (!Array.isArray(counts) || !counts.every((n) => typeof n === 'number'))
    throw new Error(`${where}: RLE "counts" must be a list of numbers or a compressed string`);
  return { size: [size[0] as number, size[1] as number], counts: counts as number[] };
}
