// Summary statistics of a feature map: what a shipped encoder's expected-features.json records on its fixed
// input, and what the tests compare the loaded encoder's features with.

export interface FeatureStats {
  mean: number;
  std: number;
  max: number;
  /** Fraction of values above zero. */
  positive: number;
}

export function featureStats(values: ArrayLike<number>): FeatureStats {
  let sum = 0;
  let sq = 0;
  let max = -Infinity;
  let pos = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    sum += x;
    sq += x * x;
    if (x > max) max = x;
    if (x > 0) pos++;
  }
  const mean = sum / values.length;
  return { mean, std: Math.sqrt(Math.max(0, sq / values.length - mean * mean)), max, positive: pos / values.length };
}
