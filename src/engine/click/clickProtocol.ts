// The standard protocol for measuring click segmentation (as RITM, SimpleClick and SAM's papers use it): on every
// object of a labelled image, the first click at the object's innermost pixel, each next click at the innermost
// pixel of the largest error region (positive where the object was missed, negative where too much was taken),
// until the IoU reaches a threshold; NoC@85 / NoC@90 count the clicks, capped. Beside it, what the polygon tool
// would need: the vertices of the object's simplified contour at the same IoU. Pure.
import { squaredDistanceTo } from '../../masks/distanceTransform';
import { IGNORE_INDEX, type MaskImage } from '../../masks/maskImage';
import { emptyBox } from '../../masks/maskDiff';
import { fillPolygon, labelRegion } from '../../masks/rasterTools';
import { simplifyLoop, signedArea, traceLoops } from '../../formats/contours';

export interface ClickObject {
  classIndex: number;
  /** 1 inside, full image. */
  inside: Uint8Array;
  area: number;
}

/** Every 4-connected region of every class (ignore excluded) with at least `minArea` pixels. */
export function clickObjects(mask: MaskImage, minArea: number): ClickObject[] {
  const seen = new Uint8Array(mask.data.length);
  const out: ClickObject[] = [];
  for (let i = 0; i < mask.data.length; i++) {
    if (seen[i] || mask.data[i] === IGNORE_INDEX) continue;
    const x = i % mask.width;
    const sel = labelRegion(mask, { x, y: (i - x) / mask.width });
    for (let j = 0; j < sel.inside.length; j++) if (sel.inside[j]) seen[j] = 1;
    if (sel.count >= minArea) out.push({ classIndex: mask.data[i], inside: sel.inside, area: sel.count });
  }
  return out;
}

/**
 * The suggestion's region under a click: the connected region of `classIndex` in the model's class map holding
 * the clicked pixel (1 inside), or null when the model gives that pixel another class.
 */
export function suggestedRegion(
  classMap: MaskImage,
  classIndex: number,
  click: { x: number; y: number },
): Uint8Array | null {
  const at = Math.floor(click.y) * classMap.width + Math.floor(click.x);
  if (classMap.data[at] !== classIndex) return null;
  return labelRegion(classMap, click).inside;
}

/**
 * How much larger than the decoder's answer to a first click the fine-tuned model's region under it may be and
 * still answer it (ClickPromptParams.suggested). A region many times the decoder's answer has usually run into
 * neighbouring objects of its class (trees, a row of cars); the decoder's answer to a click in stuff (sky, road)
 * covers much of the region, and the region draws it better. Chosen on street-1hz frames 11-20 (a model
 * fine-tuned on frames 1-10): 1.5-4 did equally well there (docs/benchmarks.md).
 */
export const SUGGESTED_REGION_RATIO = 2;

/** Whether a suggested region of `regionArea` pixels answers a first click the decoder answered with `answerArea`. */
export function suggestionAnswers(regionArea: number, answerArea: number): boolean {
  return regionArea > 0 && regionArea <= SUGGESTED_REGION_RATIO * answerArea;
}

/** IoU of a prediction with an object, pixels labelled ignore left out. */
export function objectIoU(object: Uint8Array, pred: Uint8Array, ignore: Uint8Array | null): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < object.length; i++) {
    if (ignore?.[i]) continue;
    const a = object[i] !== 0;
    const b = pred[i] !== 0;
    if (a && b) inter++;
    if (a || b) union++;
  }
  return union === 0 ? 1 : inter / union;
}

/** The innermost pixel of a region (farthest from its outside, the image's border counting as outside). */
function innermost(region: Uint8Array, width: number, height: number): { x: number; y: number; d2: number } | null {
  const W = width + 2;
  const H = height + 2;
  const outside = new Uint8Array(W * H).fill(1);
  let any = false;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      if (region[y * width + x]) {
        outside[(y + 1) * W + x + 1] = 0;
        any = true;
      }
  if (!any) return null;
  const d2 = squaredDistanceTo(outside, W, H);
  let best = -1;
  let at = 0;
  for (let i = 0; i < d2.length; i++)
    if (d2[i] > best) {
      best = d2[i];
      at = i;
    }
  const px = (at % W) - 1;
  const py = Math.floor(at / W) - 1;
  return { x: px, y: py, d2: best };
}

/**
 * The next click: at the innermost pixel of the false negatives or of the false positives, whichever lies
 * deeper; positive for a false negative. Null when nothing is wrong (ignore pixels do not count).
 */
export function nextClick(
  object: Uint8Array,
  pred: Uint8Array | null,
  ignore: Uint8Array | null,
  width: number,
  height: number,
): { x: number; y: number; positive: boolean } | null {
  const fn = new Uint8Array(object.length);
  const fp = new Uint8Array(object.length);
  for (let i = 0; i < object.length; i++) {
    if (ignore?.[i]) continue;
    const p = pred ? pred[i] !== 0 : false;
    if (object[i] && !p) fn[i] = 1;
    else if (!object[i] && p) fp[i] = 1;
  }
  const a = innermost(fn, width, height);
  const b = innermost(fp, width, height);
  if (!a && !b) return null;
  const pick = !b || (a && a.d2 >= b.d2) ? { ...a!, positive: true } : { ...b, positive: false };
  return { x: pick.x + 0.5, y: pick.y + 0.5, positive: pick.positive };
}

/** Clicks until the IoU first reached `threshold` (1-based), or `cap` when it never did within the clicks made. */
export function clicksToReach(ious: number[], threshold: number, cap: number): number {
  const i = ious.findIndex((v) => v >= threshold);
  return i < 0 ? cap : Math.min(cap, i + 1);
}

/** One object played through the protocol, as `maskloop clicks` records it. */
export interface ClickRecord {
  /** The IoU after each click, in order. */
  ious: number[];
  noc85: number;
  noc90: number;
  polygon85: number;
  polygon90: number;
}

/** Means over a group of objects played through the protocol. */
export interface ClickSummary {
  objects: number;
  noc85: number;
  noc90: number;
  polygon85: number;
  polygon90: number;
  /** Share of the objects whose IoU never reached 0.85 (0.90) within the cap: each counts the cap in NoC. */
  failed85: number;
  failed90: number;
  /** Mean clicks of the objects that did reach 0.85 (0.90); null when none did. */
  reached85: number | null;
  reached90: number | null;
  /**
   * The floor the objects that never reach put under NoC: NoC@85 (NoC@90) if every other object had reached the
   * IoU with its first click, failed x cap + (1 - failed). No way of answering the clicks goes below it without
   * bringing more objects to that IoU.
   */
  floor85: number;
  floor90: number;
}

/** Summarises objects played through the protocol with at most `cap` clicks each. */
export function summariseClicks(list: readonly ClickRecord[], cap: number): ClickSummary {
  const n = Math.max(1, list.length);
  const mean = (f: (r: ClickRecord) => number): number => list.reduce((a, r) => a + f(r), 0) / n;
  const reach = (threshold: number, noc: (r: ClickRecord) => number) => {
    const reached = list.filter((r) => r.ious.some((v) => v >= threshold));
    const failed = (list.length - reached.length) / n;
    return {
      failed,
      reached: reached.length ? reached.reduce((a, r) => a + noc(r), 0) / reached.length : null,
      floor: list.length ? failed * cap + (1 - failed) : 0,
    };
  };
  const at85 = reach(0.85, (r) => r.noc85);
  const at90 = reach(0.9, (r) => r.noc90);
  return {
    objects: list.length,
    noc85: mean((r) => r.noc85),
    noc90: mean((r) => r.noc90),
    polygon85: mean((r) => r.polygon85),
    polygon90: mean((r) => r.polygon90),
    failed85: at85.failed,
    failed90: at90.failed,
    reached85: at85.reached,
    reached90: at90.reached,
    floor85: at85.floor,
    floor90: at90.floor,
  };
}

/**
 * Vertices the polygon tool needs for the object at `threshold` IoU: the fewest of its outer contour simplified
 * (Douglas-Peucker) whose filled polygon, as the editor fills it, reaches the IoU; holes are not drawn.
 */
export function polygonVertices(object: Uint8Array, width: number, height: number, threshold: number): number {
  const loops = traceLoops(object, width, height);
  const outer = loops.filter((l) => signedArea(l) > 0).sort((p, q) => signedArea(q) - signedArea(p))[0];
  if (!outer) return 0;
  let best = outer.length;
  for (const tolerance of [0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48]) {
    const poly = simplifyLoop(outer, tolerance);
    const filled: MaskImage = { width, height, data: new Uint8Array(width * height) };
    fillPolygon(filled, poly, 1, emptyBox());
    if (objectIoU(object, filled.data, null) >= threshold) best = Math.min(best, poly.length);
    else break;
  }
  return best;
}
