/**
 * Exact squared Euclidean distance from every pixel to the nearest pixel with `target[i] !== 0`
 * (Felzenszwalb & Huttenlocher's two-pass lower-envelope algorithm, O(width x height)).
 * Pixels with no target anywhere get Infinity.
 */
export function squaredDistanceTo(target: Uint8Array, width: number, height: number): Float64Array {
  const INF = 1e20;
  const out = new Float64Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = target[i] ? 0 : INF;
  const n = Math.max(width, height);
  const f = new Float64Array(n);
  const d = new Float64Array(n);
  const v = new Int32Array(n);
  const z = new Float64Array(n + 1);
  // Columns, then rows.
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) f[y] = out[y * width + x];
    lowerEnvelope(f, height, d, v, z);
    for (let y = 0; y < height; y++) out[y * width + x] = d[y];
  }
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) f[x] = out[row + x];
    lowerEnvelope(f, width, d, v, z);
    for (let x = 0; x < width; x++) out[row + x] = d[x];
  }
  for (let i = 0; i < out.length; i++) if (out[i] >= INF / 2) out[i] = Infinity;
  return out;
}

function lowerEnvelope(f: Float64Array, n: number, d: Float64Array, v: Int32Array, z: Float64Array): void {
  let k = 0;
  v[0] = 0;
  z[0] = -Infinity;
  z[1] = Infinity;
  for (let q = 1; q < n; q++) {
    let s = (f[q] + q * q - (f[v[k]] + v[k] * v[k])) / (2 * q - 2 * v[k]);
    while (s <= z[k]) {
      k--;
      s = (f[q] + q * q - (f[v[k]] + v[k] * v[k])) / (2 * q - 2 * v[k]);
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = Infinity;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1] < q) k++;
    const dq = q - v[k];
    d[q] = dq * dq + f[v[k]];
  }
}
