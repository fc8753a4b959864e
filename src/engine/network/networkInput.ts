// What every network takes as input, shared by training (crops), inference (tiles) and the tools.

/** Network input normalisation: 8-bit RGB to [-1, 1]. */
export function normalizePixel(v: number): number {
  return v / 127.5 - 1;
}
