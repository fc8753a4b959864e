/**
 * Edge-aware refinement of class probabilities: the colour guided filter (He, Sun and Tang, "Guided Image
 * Filtering", TPAMI 2013), applied to each class's probability map with the image as the guide. Within each
 * (2r+1)^2 window the output is an affine function of the pixel's colour, fitted to the probabilities by
 * ridge regression (eps), so a probability map predicted at a coarse stride and upsampled snaps to the
 * image's colour edges. The output of a window of constant probability is that probability, and the filter
 * is linear in the probabilities, so the classes still sum to one; small overshoots are clipped and the
 * classes renormalised.
 */

export interface GuidedFilterSettings {
  /** Window radius in pixels: the window is (2r+1) x (2r+1). */
  radius: number;
  /** Ridge term, in units of the colour variance with channels scaled to [0, 1]: larger is smoother. */
  eps: number;
  /** Fit the filter's coefficients on a grid this many times coarser (the fast guided filter); 1: exact. */
  subsample?: number;
}

/**
 * Mean over the (2r+1)^2 window around each pixel, the window clipped at the image's borders (each pixel's
 * own count). Two running-sum passes: O(1) per pixel whatever the radius. `tmp` has width * height entries.
 */
export function boxMean(
  src: Float32Array,
  width: number,
  height: number,
  r: number,
  out: Float32Array,
  tmp: Float32Array,
): Float32Array {
  // Horizontal sums into tmp.
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let sum = 0;
    for (let x = 0; x < Math.min(r, width); x++) sum += src[row + x];
    for (let x = 0; x < width; x++) {
      if (x + r < width) sum += src[row + x + r];
      if (x - r - 1 >= 0) sum -= src[row + x - r - 1];
      tmp[row + x] = sum;
    }
  }
  // Vertical sums of tmp, divided by the window's clipped area.
  const colSum = new Float64Array(width);
  const invCols = new Float64Array(width);
  for (let x = 0; x < width; x++) invCols[x] = 1 / (Math.min(width - 1, x + r) - Math.max(0, x - r) + 1);
  for (let y = 0; y < Math.min(r, height); y++) for (let x = 0; x < width; x++) colSum[x] += tmp[y * width + x];
  for (let y = 0; y < height; y++) {
    if (y + r < height) for (let x = 0; x < width; x++) colSum[x] += tmp[(y + r) * width + x];
    if (y - r - 1 >= 0) for (let x = 0; x < width; x++) colSum[x] -= tmp[(y - r - 1) * width + x];
    const inv = 1 / (Math.min(height - 1, y + r) - Math.max(0, y - r) + 1);
    for (let x = 0; x < width; x++) out[y * width + x] = colSum[x] * inv * invCols[x];
  }
  return out;
}

/**
 * Block means of interleaved channels: each s x s block (clipped at the borders) of channel c becomes one value
 * of out[c], mapped by value * scale + offset.
 */
function blockMeans(
  src: Float32Array | Uint8Array,
  channels: number,
  width: number,
  height: number,
  s: number,
  scale: number,
  offset: number,
  out: Float32Array[],
): void {
  const wl = Math.ceil(width / s);
  const hl = Math.ceil(height / s);
  for (const o of out) o.fill(0);
  const blockOf = new Int32Array(width);
  for (let x = 0; x < width; x++) blockOf[x] = Math.floor(x / s);
  for (let y = 0; y < height; y++) {
    const row = Math.floor(y / s) * wl;
    for (let c = 0; c < out.length; c++) {
      const o = out[c];
      let i = y * width * channels + c;
      for (let x = 0; x < width; x++, i += channels) o[row + blockOf[x]] += src[i];
    }
  }
  for (let by = 0; by < hl; by++) {
    const rows = Math.min(height, (by + 1) * s) - by * s;
    for (let bx = 0; bx < wl; bx++) {
      const f = scale / (rows * (Math.min(width, (bx + 1) * s) - bx * s));
      for (const o of out) o[by * wl + bx] = o[by * wl + bx] * f + offset;
    }
  }
}

/** Bilinear sample positions of a full-resolution axis on its 1/s grid (half-pixel centres, clamped). */
function upsampleAxis(size: number, lowSize: number, s: number): { i0: Int32Array; i1: Int32Array; f: Float32Array } {
  const i0 = new Int32Array(size);
  const i1 = new Int32Array(size);
  const f = new Float32Array(size);
  for (let x = 0; x < size; x++) {
    const u = Math.min(lowSize - 1, Math.max(0, (x + 0.5) / s - 0.5));
    i0[x] = Math.floor(u);
    i1[x] = Math.min(lowSize - 1, i0[x] + 1);
    f[x] = u - i0[x];
  }
  return { i0, i1, f };
}

/**
 * Refines interleaved [height, width, classes] probabilities with the colour guided filter. `guide` is the
 * interleaved [height, width, 3] image; `guideScale`/`guideOffset` map its values to [0, 1] per channel
 * (value * scale + offset). With `subsample` s > 1 this is the fast guided filter (He and Sun, 2015): the
 * affine coefficients are fitted on the image and probabilities block-averaged by s (radius r / s there),
 * then upsampled bilinearly and applied to the full-resolution colours, which keeps the edges sharp.
 * Returns new probabilities, same layout.
 */
export function guidedFilterProbabilities(
  guide: Float32Array | Uint8Array,
  probs: Float32Array,
  height: number,
  width: number,
  classes: number,
  settings: GuidedFilterSettings,
  guideScale = 1,
  guideOffset = 0,
): Float32Array {
  const n = width * height;
  if (guide.length !== n * 3)
    throw new Error(
      `guided filter: the guide has ${guide.length} values, expected ${n * 3} for ${width}x${height} RGB`,
    );
  if (probs.length !== n * classes)
    throw new Error(
      `guided filter: ${probs.length} probabilities, expected ${n * classes} for ${width}x${height} and ${classes} classes`,
    );
  const s = Math.max(1, Math.floor(settings.subsample ?? 1));
  const r = Math.max(0, Math.round(settings.radius / s));
  const wl = Math.ceil(width / s);
  const hl = Math.ceil(height / s);
  const nl = wl * hl;
  const tmp = new Float32Array(nl);
  const buf = new Float32Array(nl);
  const newLow = (): Float32Array => new Float32Array(nl);
  const mean = (src: Float32Array, out = newLow()): Float32Array => boxMean(src, wl, hl, r, out, tmp);
  const channel = [newLow(), newLow(), newLow()];
  blockMeans(guide, 3, width, height, s, guideScale, guideOffset, channel);
  const meanI = channel.map((c) => mean(c));
  // Each window's colour covariance + eps, inverted (symmetric 3x3: six entries per low-resolution pixel).
  const pair = (i: number, j: number): Float32Array => {
    for (let k = 0; k < nl; k++) buf[k] = channel[i][k] * channel[j][k];
    const m = mean(buf);
    for (let k = 0; k < nl; k++) m[k] -= meanI[i][k] * meanI[j][k];
    return m;
  };
  const s00 = pair(0, 0),
    s01 = pair(0, 1),
    s02 = pair(0, 2),
    s11 = pair(1, 1),
    s12 = pair(1, 2),
    s22 = pair(2, 2);
  const eps = settings.eps;
  for (let k = 0; k < nl; k++) {
    const a = s00[k] + eps,
      b = s01[k],
      c = s02[k],
      d = s11[k] + eps,
      e = s12[k],
      f = s22[k] + eps;
    const i00 = d * f - e * e,
      i01 = c * e - b * f,
      i02 = b * e - c * d;
    const det = a * i00 + b * i01 + c * i02;
    s00[k] = i00 / det;
    s01[k] = i01 / det;
    s02[k] = i02 / det;
    s11[k] = (a * f - c * c) / det;
    s12[k] = (b * c - a * e) / det;
    s22[k] = (a * d - b * b) / det;
  }
  const out = new Float32Array(n * classes);
  const meanP = newLow();
  const cov = [newLow(), newLow(), newLow()];
  const coef = [newLow(), newLow(), newLow(), newLow()];
  const smooth = [newLow(), newLow(), newLow(), newLow()];
  const ux = upsampleAxis(width, wl, s);
  const uy = upsampleAxis(height, hl, s);
  const rowA = [new Float32Array(wl), new Float32Array(wl), new Float32Array(wl), new Float32Array(wl)];
  const lowProbs = Array.from({ length: classes }, newLow);
  blockMeans(probs, classes, width, height, s, 1, 0, lowProbs);
  for (let cl = 0; cl < classes; cl++) {
    const p = lowProbs[cl];
    mean(p, meanP);
    for (let i = 0; i < 3; i++) {
      for (let k = 0; k < nl; k++) buf[k] = channel[i][k] * p[k];
      mean(buf, cov[i]);
      for (let k = 0; k < nl; k++) cov[i][k] -= meanI[i][k] * meanP[k];
    }
    for (let k = 0; k < nl; k++) {
      const c0 = cov[0][k],
        c1 = cov[1][k],
        c2 = cov[2][k];
      const a0 = s00[k] * c0 + s01[k] * c1 + s02[k] * c2;
      const a1 = s01[k] * c0 + s11[k] * c1 + s12[k] * c2;
      const a2 = s02[k] * c0 + s12[k] * c1 + s22[k] * c2;
      coef[0][k] = a0;
      coef[1][k] = a1;
      coef[2][k] = a2;
      coef[3][k] = meanP[k] - a0 * meanI[0][k] - a1 * meanI[1][k] - a2 * meanI[2][k];
    }
    for (let j = 0; j < 4; j++) mean(coef[j], smooth[j]);
    // Upsample the smoothed coefficients (rows first, then along the row) and apply them to the full-resolution colours.
    const [ra0, ra1, ra2, rb] = rowA;
    for (let y = 0; y < height; y++) {
      const r0 = uy.i0[y] * wl,
        r1 = uy.i1[y] * wl,
        fy = uy.f[y];
      for (let j = 0; j < 4; j++) {
        const sm = smooth[j],
          row = rowA[j];
        for (let x = 0; x < wl; x++) row[x] = sm[r0 + x] + (sm[r1 + x] - sm[r0 + x]) * fy;
      }
      let k = y * width;
      for (let x = 0; x < width; x++, k++) {
        const x0 = ux.i0[x],
          x1 = ux.i1[x],
          fx = ux.f[x];
        const g = k * 3;
        const a0 = ra0[x0] + (ra0[x1] - ra0[x0]) * fx;
        const a1 = ra1[x0] + (ra1[x1] - ra1[x0]) * fx;
        const a2 = ra2[x0] + (ra2[x1] - ra2[x0]) * fx;
        const b = rb[x0] + (rb[x1] - rb[x0]) * fx;
        out[k * classes + cl] =
          b + (a0 * guide[g] + a1 * guide[g + 1] + a2 * guide[g + 2]) * guideScale + (a0 + a1 + a2) * guideOffset;
      }
    }
  }
  // Clip the overshoots (the affine fit can leave [0, 1] at strong edges) and renormalise.
  for (let k = 0; k < n; k++) {
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      const v = Math.max(0, out[k * classes + c]);
      out[k * classes + c] = v;
      sum += v;
    }
    if (sum > 0) for (let c = 0; c < classes; c++) out[k * classes + c] /= sum;
    else for (let c = 0; c < classes; c++) out[k * classes + c] = probs[k * classes + c];
  }
  return out;
}
