/** Largest difference between two arrays over the largest magnitude of the reference `b`. */
export function relDiff(a: Float32Array, b: Float32Array): number {
  let scale = 1e-6;
  let max = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < b.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max / scale;
}
