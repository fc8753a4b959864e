import { squaredDistanceTo } from './distanceTransform';

/**
 * Inner boundary band of a binary region, as the Boundary IoU reference implementation computes it (Cheng et
 * al., CVPR 2021, boundary-iou-api `mask_to_boundary`): the region minus its erosion by a 3x3 square iterated
 * `band` times, after padding the mask with one pixel of zeros. So: the region's pixels within Chebyshev
 * distance `band` of a pixel outside it, the image's border counting as outside.
 */
export function innerBand(region: Uint8Array, width: number, height: number, band: number): Uint8Array {
  // A pixel survives the erosion when the (2 band + 1)-pixel square around it lies in the region and inside
  // the image: a row pass then a column pass of "all set within band", with prefix counts of unset pixels.
  const rowOk = new Uint8Array(width * height);
  const holes = new Int32Array(Math.max(width, height) + 1);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) holes[x + 1] = holes[x] + (region[y * width + x] ? 0 : 1);
    for (let x = band; x < width - band; x++)
      rowOk[y * width + x] = holes[x + band + 1] - holes[x - band] === 0 ? 1 : 0;
  }
  const out = new Uint8Array(width * height);
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) holes[y + 1] = holes[y] + (rowOk[y * width + x] ? 0 : 1);
    for (let y = 0; y < height; y++) {
      const i = y * width + x;
      if (!region[i]) continue;
      const eroded = y >= band && y < height - band && holes[y + band + 1] - holes[y - band] === 0;
      if (!eroded) out[i] = 1;
    }
  }
  return out;
}

/** Boundary band width in pixels for a fraction of the image diagonal (at least 1). */
export function bandFromDiagonal(width: number, height: number, fraction: number): number {
  return Math.max(1, Math.round(fraction * Math.sqrt(width * width + height * height)));
}

/**
 * Boundary IoU of two binary regions: IoU of their inner boundary bands, over pixels where `valid`
 * is set (ignore pixels excluded). Two empty regions score 1.
 */
export function boundaryIoU(
  gt: Uint8Array,
  pred: Uint8Array,
  width: number,
  height: number,
  band: number,
  valid?: Uint8Array,
): number {
  const g = innerBand(gt, width, height, band);
  const p = innerBand(pred, width, height, band);
  let inter = 0;
  let union = 0;
  for (let i = 0; i < g.length; i++) {
    if (valid && !valid[i]) continue;
    if (g[i] && p[i]) inter++;
    if (g[i] || p[i]) union++;
  }
  return union === 0 ? 1 : inter / union;
}

/**
 * Contour pixels of a binary region: region pixels with a 4-neighbour outside it (the image border
 * is not a contour, as in the DAVIS boundary measure).
 */
export function contourPixels(region: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (!region[i]) continue;
      if (
        (x > 0 && !region[i - 1]) ||
        (x < width - 1 && !region[i + 1]) ||
        (y > 0 && !region[i - width]) ||
        (y < height - 1 && !region[i + width])
      )
        out[i] = 1;
    }
  }
  return out;
}

/** The offsets (dx, dy) of the pixels within `radius` of a pixel (Euclidean, the centre included). */
export function discOffsets(radius: number): [number, number][] {
  const r = Math.floor(radius);
  const out: [number, number][] = [];
  for (let dy = -r; dy <= r; dy++)
    for (let dx = -r; dx <= r; dx++) if (dx * dx + dy * dy <= radius * radius) out.push([dx, dy]);
  return out;
}

/**
 * Boundary F from the contour counts: precision hitP / np, recall hitG / ng, their harmonic mean. Both contours
 * empty scores 1; only one empty scores 0.
 */
function contourF(hitP: number, np: number, hitG: number, ng: number): number {
  if (ng === 0 && np === 0) return 1;
  if (ng === 0 || np === 0) return 0;
  const precision = hitP / np;
  const recall = hitG / ng;
  return precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
}

/** Tolerances up to this many pixels are checked in a disc around each contour pixel, larger by distance transforms. */
const MAX_LOCAL_TOLERANCE = 8;

/**
 * Boundary F-score at a pixel tolerance: precision is the share of predicted contour pixels within
 * `tolerance` of the true contour, recall the reverse; F is their harmonic mean. Both contours empty
 * scores 1; only one empty scores 0.
 */
export function boundaryFScore(
  gt: Uint8Array,
  pred: Uint8Array,
  width: number,
  height: number,
  tolerance: number,
  valid?: Uint8Array,
): number {
  const cg = contourPixels(gt, width, height);
  const cp = contourPixels(pred, width, height);
  if (valid) {
    for (let i = 0; i < cg.length; i++)
      if (!valid[i]) {
        cg[i] = 0;
        cp[i] = 0;
      }
  }
  let ng = 0;
  let np = 0;
  for (let i = 0; i < cg.length; i++) {
    ng += cg[i];
    np += cp[i];
  }
  if (ng === 0 && np === 0) return 1;
  if (ng === 0 || np === 0) return 0;
  const t2 = tolerance * tolerance;
  let hitP = 0;
  let hitG = 0;
  if (tolerance <= MAX_LOCAL_TOLERANCE) {
    // Contours are sparse: look for the other contour within the disc of the tolerance around each pixel,
    // exactly what a distance transform's "at most the tolerance" says, without two transforms per class.
    const disc = discOffsets(tolerance);
    const near = (other: Uint8Array, x: number, y: number): boolean => {
      for (const [dx, dy] of disc) {
        const u = x + dx;
        const v = y + dy;
        if (u >= 0 && u < width && v >= 0 && v < height && other[v * width + u]) return true;
      }
      return false;
    };
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        if (cp[i] && near(cg, x, y)) hitP++;
        if (cg[i] && near(cp, x, y)) hitG++;
      }
  } else {
    const dToG = squaredDistanceTo(cg, width, height);
    const dToP = squaredDistanceTo(cp, width, height);
    for (let i = 0; i < cg.length; i++) {
      if (cp[i] && dToG[i] <= t2) hitP++;
      if (cg[i] && dToP[i] <= t2) hitG++;
    }
  }
  return contourF(hitP, np, hitG, ng);
}

/**
 * Each pixel of a label map that lies in its own class's inner band (`innerBand` of that class's region): its
 * (2 band + 1)-pixel square leaves the image or holds another label. One map serves every class, since a pixel
 * belongs to one region only: O(pixels) whatever the number of classes.
 */
export function labelBands(labels: Uint8Array, width: number, height: number, band: number): Uint8Array {
  const side = 2 * band + 1;
  // rowOk: the row segment [x - band, x + band] lies in the image and holds one label (the run ending at its
  // right end is long enough).
  const rowOk = new Uint8Array(width * height);
  const run = new Int32Array(width);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) run[x] = x > 0 && labels[row + x] === labels[row + x - 1] ? run[x - 1] + 1 : 1;
    for (let x = band; x < width - band; x++) rowOk[row + x] = run[x + band] >= side ? 1 : 0;
  }
  // The square is uniform when the rows' segments below and above are, with the column's label unchanged.
  const out = new Uint8Array(width * height);
  const col = new Int32Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const i = row + x;
      col[i] = rowOk[i] ? (y > 0 && labels[i - width] === labels[i] ? col[i - width] + 1 : 1) : 0;
    }
  }
  for (let y = 0; y < height; y++) {
    const row = y * width;
    const inside = y >= band && y < height - band;
    for (let x = 0; x < width; x++) out[row + x] = inside && col[row + x + band * width] >= side ? 0 : 1;
  }
  return out;
}

/** Each pixel of a label map on its own class's contour (`contourPixels` of that region): a 4-neighbour holds another label. */
export function labelContours(labels: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const l = labels[i];
      if (
        (x > 0 && labels[i - 1] !== l) ||
        (x < width - 1 && labels[i + 1] !== l) ||
        (y > 0 && labels[i - width] !== l) ||
        (y < height - 1 && labels[i + width] !== l)
      )
        out[i] = 1;
    }
  }
  return out;
}

/**
 * Boundary IoU and boundary F-score of every class of two label maps at once, equal to `boundaryIoU` and
 * `boundaryFScore` on each class's regions, by class value (0-255). Up to MAX_LOCAL_TOLERANCE, in a few passes
 * over the pixels instead of several per class; beyond, class by class for the values in `classes` (the others
 * are left at 0). Pixels where `valid` is 0 are left out, as there.
 */
export function classBoundaryScores(
  truth: Uint8Array,
  pred: Uint8Array,
  width: number,
  height: number,
  band: number,
  tolerance: number,
  valid: Uint8Array,
  classes: readonly number[],
): { boundaryIoU: Float64Array; boundaryF: Float64Array } {
  const n = width * height;
  if (tolerance > MAX_LOCAL_TOLERANCE) {
    const bIoU = new Float64Array(256);
    const boundaryF = new Float64Array(256);
    const g = new Uint8Array(n);
    const p = new Uint8Array(n);
    for (const c of classes) {
      for (let i = 0; i < n; i++) {
        g[i] = truth[i] === c ? 1 : 0;
        p[i] = pred[i] === c ? 1 : 0;
      }
      bIoU[c] = boundaryIoU(g, p, width, height, band, valid);
      boundaryF[c] = boundaryFScore(g, p, width, height, tolerance, valid);
    }
    return { boundaryIoU: bIoU, boundaryF };
  }
  const bg = labelBands(truth, width, height, band);
  const bp = labelBands(pred, width, height, band);
  const inter = new Float64Array(256);
  const union = new Float64Array(256);
  for (let i = 0; i < n; i++) {
    if (!valid[i]) continue;
    const g = truth[i];
    const p = pred[i];
    const both = bg[i] === 1 && bp[i] === 1 && g === p;
    if (bg[i]) union[g]++;
    if (bp[i] && !both) union[p]++;
    if (both) inter[g]++;
  }
  const cg = labelContours(truth, width, height);
  const cp = labelContours(pred, width, height);
  const ng = new Float64Array(256);
  const np = new Float64Array(256);
  for (let i = 0; i < n; i++) {
    if (!valid[i]) {
      cg[i] = 0;
      cp[i] = 0;
      continue;
    }
    if (cg[i]) ng[truth[i]]++;
    if (cp[i]) np[pred[i]]++;
  }
  const disc = discOffsets(tolerance);
  // Whether the other map has a contour pixel of class c within the tolerance of (x, y).
  const near = (contour: Uint8Array, labels: Uint8Array, c: number, x: number, y: number): boolean => {
    for (const [dx, dy] of disc) {
      const u = x + dx;
      const v = y + dy;
      if (u >= 0 && u < width && v >= 0 && v < height && contour[v * width + u] && labels[v * width + u] === c)
        return true;
    }
    return false;
  };
  const hitP = new Float64Array(256);
  const hitG = new Float64Array(256);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (cp[i] && near(cg, truth, pred[i], x, y)) hitP[pred[i]]++;
      if (cg[i] && near(cp, pred, truth[i], x, y)) hitG[truth[i]]++;
    }
  const bIoU = new Float64Array(256);
  const boundaryF = new Float64Array(256);
  for (let c = 0; c < 256; c++) {
    bIoU[c] = union[c] === 0 ? 1 : inter[c] / union[c];
    boundaryF[c] = contourF(hitP[c], np[c], hitG[c], ng[c]);
  }
  return { boundaryIoU: bIoU, boundaryF };
}
