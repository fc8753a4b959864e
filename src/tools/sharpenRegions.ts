// "Sharpen suggestions", as a measurement (docs/benchmarks.md): the fine-tuned model's suggestion proposes
// regions, a click-segmentation model redraws each region's boundary from a box (and mask) prompt, and the redrawn
// edge replaces the suggestion's within a band around it. Not in the product: on the real data it did not improve
// Boundary IoU. The arithmetic is here (pure); sharpenProbe.ts runs the decoder.
import { squaredDistanceTo } from '../masks/distanceTransform';
import { IGNORE_INDEX, type MaskImage } from '../masks/maskImage';
import { labelRegion } from '../masks/rasterTools';

export interface SharpenOptions {
  /** Regions smaller than this many pixels are left as they are. */
  minArea: number;
  /** Regions covering more than this share of the image ("stuff": sky, road) are left as they are. */
  maxShare: number;
  /** The redrawn region replaces the suggested one only where the two agree at least this much (IoU). */
  minAgreement: number;
  /** How far the edge may move, as a fraction of the image's diagonal. */
  bandFraction: number;
}

export interface RegionProposal {
  classIndex: number;
  /** 1 inside, at the image's size. */
  inside: Uint8Array;
  area: number;
  /** Pixel corners, x1/y1 exclusive. */
  box: { x0: number; y0: number; x1: number; y1: number };
}

/** Every 4-connected region of every class (ignore left out) within the size limits, largest first. */
export function proposeRegions(classMap: MaskImage, o: Pick<SharpenOptions, 'minArea' | 'maxShare'>): RegionProposal[] {
  const { width, height, data } = classMap;
  const seen = new Uint8Array(data.length);
  const out: RegionProposal[] = [];
  for (let i = 0; i < data.length; i++) {
    if (seen[i] || data[i] === IGNORE_INDEX) continue;
    const x = i % width;
    const sel = labelRegion(classMap, { x, y: (i - x) / width });
    let x0 = width;
    let y0 = height;
    let x1 = 0;
    let y1 = 0;
    for (let j = 0; j < sel.inside.length; j++) {
      if (!sel.inside[j]) continue;
      seen[j] = 1;
      const px = j % width;
      const py = (j - px) / width;
      if (px < x0) x0 = px;
      if (px >= x1) x1 = px + 1;
      if (py < y0) y0 = py;
      if (py >= y1) y1 = py + 1;
    }
    if (sel.count >= o.minArea && sel.count <= o.maxShare * data.length)
      out.push({ classIndex: data[i], inside: sel.inside, area: sel.count, box: { x0, y0, x1, y1 } });
  }
  return out.sort((a, b) => b.area - a.area);
}

/** IoU of two 0/1 masks. */
export function maskIoU(a: Uint8Array, b: Uint8Array): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] && b[i]) inter++;
    if (a[i] || b[i]) union++;
  }
  return union === 0 ? 1 : inter / union;
}

/** The candidate that agrees most with the region, and how much (IoU). */
export function closestCandidate(region: Uint8Array, candidates: readonly { mask: Uint8Array }[]) {
  let best: { mask: Uint8Array; iou: number } | null = null;
  for (const c of candidates) {
    const iou = maskIoU(region, c.mask);
    if (!best || iou > best.iou) best = { mask: c.mask, iou };
  }
  return best;
}

/**
 * Moves a region's edge in `classMap` (in place) to the redrawn mask's, within `band` pixels of the region's
 * edge: pixels the redrawn mask adds take the region's class; pixels it takes away take the class of the nearest
 * pixel outside the region, as the suggestion has it. Returns the number of pixels changed.
 */
export function applyRedrawn(classMap: MaskImage, region: RegionProposal, redrawn: Uint8Array, band: number): number {
  const { width, height, data } = classMap;
  const n = data.length;
  const outside = new Uint8Array(n);
  for (let i = 0; i < n; i++) outside[i] = region.inside[i] ? 0 : 1;
  // Distance to the region's edge: for a pixel inside, to the nearest outside pixel; outside, to the nearest inside.
  const toOutside = squaredDistanceTo(outside, width, height);
  const toInside = squaredDistanceTo(region.inside, width, height);
  const b2 = band * band;
  const removed: number[] = [];
  let changed = 0;
  for (let i = 0; i < n; i++) {
    if (data[i] === IGNORE_INDEX) continue;
    if (region.inside[i]) {
      if (!redrawn[i] && toOutside[i] <= b2) removed.push(i);
    } else if (redrawn[i] && toInside[i] <= b2 && data[i] !== region.classIndex) {
      data[i] = region.classIndex;
      changed++;
    }
  }
  // Pixels taken away: grow the classes around the region into them, nearest first (breadth first).
  const pending = new Uint8Array(n);
  for (const i of removed) pending[i] = 1;
  let front = removed.filter((i) => hasSettledNeighbour(i, pending, region.inside, width, height));
  while (front.length > 0) {
    const assigned: [number, number][] = [];
    for (const i of front) {
      const c = settledNeighbourClass(i, pending, region.inside, data, width, height);
      if (c !== null) assigned.push([i, c]);
    }
    for (const [i, c] of assigned) {
      if (!pending[i]) continue;
      pending[i] = 0;
      if (data[i] !== c) {
        data[i] = c;
        changed++;
      }
    }
    const next = new Set<number>();
    for (const [i] of assigned) {
      const x = i % width;
      const y = (i - x) / width;
      for (const j of neighbours(x, y, width, height)) if (pending[j]) next.add(j);
    }
    front = [...next];
  }
  return changed;
}

function neighbours(x: number, y: number, width: number, height: number): number[] {
  const out: number[] = [];
  if (x > 0) out.push(y * width + x - 1);
  if (x < width - 1) out.push(y * width + x + 1);
  if (y > 0) out.push((y - 1) * width + x);
  if (y < height - 1) out.push((y + 1) * width + x);
  return out;
}

/** A neighbour is settled when it is outside the region, or inside but kept, and not waiting for a class. */
function hasSettledNeighbour(i: number, pending: Uint8Array, inside: Uint8Array, width: number, height: number) {
  const x = i % width;
  return neighbours(x, (i - x) / width, width, height).some((j) => !pending[j] && !inside[j]);
}

function settledNeighbourClass(
  i: number,
  pending: Uint8Array,
  inside: Uint8Array,
  data: Uint8Array,
  width: number,
  height: number,
): number | null {
  const x = i % width;
  for (const j of neighbours(x, (i - x) / width, width, height))
    if (!pending[j] && (!inside[j] || data[j] !== data[i]) && data[j] !== IGNORE_INDEX) return data[j];
  return null;
}
