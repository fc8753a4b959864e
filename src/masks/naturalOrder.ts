// Natural name order, as file managers sort: frame_2 before frame_10. The order of a sequence's frames in the
// editor and in `simulate`.

/** Digit runs compare as numbers, case aside; names equal by that are ordered by their code units. */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true, sensitivity: 'base' }) || (a < b ? -1 : a > b ? 1 : 0);
}
