// Fitting learnt edges for click answers (clickEdges.ts) on masks a person saved: the standard click protocol
// (clickProtocol.ts) is played on their objects through the editor's own click path, the pixels near each
// answer's edge are sampled beside the saved mask, and the head is fitted on them. Some images are held out: the
// protocol is played on their objects again with the head redrawing every answer, and the head redraws a class's
// answers only where it took that class's objects to IoU 0.85 and 0.90 in fewer clicks.
import { IGNORE_INDEX, type MaskImage, type RgbImage } from '../../masks/maskImage';
import { SeededRandom } from '../../masks/seededRandom';
import type { ClickEdgesWeights } from '../../protocol/modelTypes';
import { CLICK_EDGES_FEATURES, EDGE_FIT, edgeFeatures, edgeInputs, fitEdgeHead, redrawEdges } from './clickEdges';
import { clickObjects, clicksToReach, nextClick, objectIoU, type ClickObject } from './clickProtocol';
import type { ClickPoint } from './honourClicks';

export interface EdgeFitSettings {
  /** Saved images the protocol is played on at most (spread evenly over those given). */
  images: number;
  /** Clicks per object at most (the protocol stops earlier at IoU 0.90); NoC counts this when never reached. */
  maxClicks: number;
  /** Objects per image at most (a seeded choice among them). */
  objectsPerImage: number;
  /** Smallest object, in pixels (as `maskloop clicks`). */
  minArea: number;
  /** Band pixels sampled from each answer. */
  pixelsPerAnswer: number;
  /** Held-out objects of a class needed to judge it. */
  minHeldOut: number;
  /** Clicks (NoC@85 + NoC@90, mean over the class's held-out objects) the head must save to redraw a class. */
  minGain: number;
}

export const DEFAULT_EDGE_FIT: EdgeFitSettings = {
  images: 8,
  maxClicks: 20,
  objectsPerImage: 12,
  minArea: 400,
  pixelsPerAnswer: 256,
  minHeldOut: 3,
  minGain: 0.25,
};

/** Answers a click prompt on image `index` as the editor's click path does (without learnt edges). */
export type ClickAnswerer = (
  index: number,
  prompt: { points: ClickPoint[]; continueFrom?: number },
) => Promise<{ mask: Uint8Array; answer: number }>;

export interface EdgeFitImage {
  image: RgbImage;
  mask: MaskImage;
}

/** A class's held-out objects: their mean NoC@85 / NoC@90 without and with the head. */
export interface HeldOutClass {
  classIndex: number;
  objects: number;
  without: { noc85: number; noc90: number };
  with: { noc85: number; noc90: number };
}

export interface EdgeFitResult {
  weights: ClickEdgesWeights | null;
  /** What became of it, in words. */
  report: string;
  heldOut: HeldOutClass[];
}

/** Which images are played (evenly spread) and which of them are held out (every third, from the second). */
export function edgeFitImages(count: number, most: number): { fit: number[]; heldOut: number[] } {
  const n = Math.min(count, most);
  const picked = Array.from({ length: n }, (_, k) => Math.floor(((k + 0.5) * count) / n));
  const fit: number[] = [];
  const heldOut: number[] = [];
  picked.forEach((i, k) => (n >= 2 && k % 3 === 1 ? heldOut : fit).push(i));
  return { fit, heldOut };
}

/** The objects of an image the protocol is played on (at most `objectsPerImage`, a seeded choice). */
function objectsOf(mask: MaskImage, s: EdgeFitSettings, rng: SeededRandom): ClickObject[] {
  const objects = clickObjects(mask, s.minArea);
  return objects.length > s.objectsPerImage ? rng.shuffle(objects).slice(0, s.objectsPerImage) : objects;
}

/**
 * Plays the protocol on one object until IoU 0.90 or `maxClicks`: each answer (redrawn by `redraw` when given,
 * and then the next click placed on its errors) goes to `each`; returns the IoU after each click.
 */
async function playObject(
  index: number,
  mask: MaskImage,
  ignore: Uint8Array,
  obj: ClickObject,
  s: EdgeFitSettings,
  answer: ClickAnswerer,
  check: () => void,
  redraw: ((answer: Uint8Array, points: ClickPoint[]) => Uint8Array) | null,
  each?: (mask: Uint8Array) => void,
): Promise<number[]> {
  const points: ClickPoint[] = [];
  const ious: number[] = [];
  let pred: Uint8Array | null = null;
  let previous: number | undefined;
  while (ious.length < s.maxClicks) {
    check();
    const click = nextClick(obj.inside, pred, ignore, mask.width, mask.height);
    if (!click) {
      ious.push(1);
      break;
    }
    points.push(click);
    const r = await answer(index, {
      points: points.slice(),
      ...(previous !== undefined ? { continueFrom: previous } : {}),
    });
    previous = r.answer;
    pred = redraw ? redraw(r.mask, points) : r.mask;
    each?.(pred);
    ious.push(objectIoU(obj.inside, pred, ignore));
    if (ious[ious.length - 1] >= 0.9) break;
  }
  return ious;
}

/**
 * Fits learnt edges on saved images (`clickModel` names the click model answering, stored with the head).
 * Null weights, with the reason in `report`, when there is too little to fit on or no class gained.
 */
export async function fitClickEdges(
  images: readonly EdgeFitImage[],
  classes: number,
  answer: ClickAnswerer,
  o: {
    clickModel: string;
    seed: number;
    settings?: Partial<EdgeFitSettings>;
    check?: () => void;
    onProgress?: (message: string, done: number, total: number) => void;
  },
): Promise<EdgeFitResult> {
  const s = { ...DEFAULT_EDGE_FIT, ...o.settings };
  const check = o.check ?? (() => undefined);
  const t0 = Date.now();
  const { fit, heldOut } = edgeFitImages(images.length, s.images);
  if (heldOut.length === 0)
    return {
      weights: null,
      report: 'not fitted: it needs at least 2 saved images (one is held out to judge it)',
      heldOut: [],
    };
  const rng = new SeededRandom(o.seed + 7919);
  const inputs = edgeInputs(classes);
  const rows: number[] = [];
  const labels: number[] = [];
  let answers = 0;
  const total = fit.length + heldOut.length;
  for (const [k, i] of fit.entries()) {
    o.onProgress?.(`learning click edges: clicks on saved image ${k + 1} of ${fit.length}`, k, total);
    const { image, mask } = images[i];
    const ignore = mask.data.map((v) => (v === IGNORE_INDEX ? 1 : 0));
    for (const obj of objectsOf(mask, s, rng))
      await playObject(i, mask, ignore, obj, s, answer, check, null, (a) => {
        answers++;
        const f = edgeFeatures(a, image, obj.classIndex, classes);
        if (!f) return;
        const usable: number[] = [];
        for (let p = 0; p < f.pixels.length; p++) if (!ignore[f.pixels[p]]) usable.push(p);
        const take = usable.length <= s.pixelsPerAnswer ? usable : rng.shuffle(usable).slice(0, s.pixelsPerAnswer);
        for (const p of take) {
          for (let j = 0; j < inputs; j++) rows.push(f.features[p * inputs + j]);
          labels.push(obj.inside[f.pixels[p]] ? 1 : 0);
        }
      });
  }
  if (labels.length < 1000)
    return {
      weights: null,
      report: `not fitted: ${answers} answers on ${fit.length} saved image(s) gave ${labels.length} edge pixels (1000 needed)`,
      heldOut: [],
    };
  check();
  o.onProgress?.(`learning click edges: fitting on ${labels.length} edge pixels`, fit.length, total);
  const head = fitEdgeHead(Float32Array.from(rows), Uint8Array.from(labels), inputs, { ...EDGE_FIT, seed: o.seed });
  const withClasses = { ...head, classes };
  // Judged as the editor will use it: the held-out objects played again with every answer redrawn.
  const judged = new Map<number, HeldOutClass>();
  for (const [k, i] of heldOut.entries()) {
    o.onProgress?.(
      `learning click edges: judging on held-out image ${k + 1} of ${heldOut.length}`,
      fit.length + k,
      total,
    );
    const { image, mask } = images[i];
    const ignore = mask.data.map((v) => (v === IGNORE_INDEX ? 1 : 0));
    for (const obj of objectsOf(mask, s, rng)) {
      const plain = await playObject(i, mask, ignore, obj, s, answer, check, null);
      const redrawn = await playObject(i, mask, ignore, obj, s, answer, check, (a, points) =>
        redrawEdges(a, image, obj.classIndex, withClasses, points),
      );
      const j = judged.get(obj.classIndex) ?? {
        classIndex: obj.classIndex,
        objects: 0,
        without: { noc85: 0, noc90: 0 },
        with: { noc85: 0, noc90: 0 },
      };
      j.objects++;
      j.without.noc85 += clicksToReach(plain, 0.85, s.maxClicks);
      j.without.noc90 += clicksToReach(plain, 0.9, s.maxClicks);
      j.with.noc85 += clicksToReach(redrawn, 0.85, s.maxClicks);
      j.with.noc90 += clicksToReach(redrawn, 0.9, s.maxClicks);
      judged.set(obj.classIndex, j);
    }
  }
  const perClass = [...judged.values()]
    .sort((a, b) => a.classIndex - b.classIndex)
    .map((j) => ({
      ...j,
      without: { noc85: j.without.noc85 / j.objects, noc90: j.without.noc90 / j.objects },
      with: { noc85: j.with.noc85 / j.objects, noc90: j.with.noc90 / j.objects },
    }));
  const clicks = (n: { noc85: number; noc90: number }): number => n.noc85 + n.noc90;
  const redrawn = perClass
    .filter((c) => c.objects >= s.minHeldOut && clicks(c.without) - clicks(c.with) >= s.minGain)
    .map((c) => c.classIndex);
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  const f2 = (v: number): string => v.toFixed(2);
  const gains = perClass
    .map(
      (c) =>
        `${c.classIndex}: ${f2(c.without.noc85)} / ${f2(c.without.noc90)} -> ${f2(c.with.noc85)} / ${f2(c.with.noc90)} (${c.objects})`,
    )
    .join(', ');
  const where = `fitted on ${labels.length} edge pixels of ${answers} answers on ${fit.length} saved image(s), judged on ${heldOut.length} held out (class: NoC@85 / NoC@90 without -> with (objects): ${gains || 'none'}), in ${seconds} s`;
  if (redrawn.length === 0)
    return {
      weights: null,
      report: `not kept: no class's held-out objects took fewer clicks; ${where}`,
      heldOut: perClass,
    };
  return {
    weights: { features: CLICK_EDGES_FEATURES, clickModel: o.clickModel, classes, redrawn, ...head },
    report: `kept for class(es) ${redrawn.join(', ')}; ${where}`,
    heldOut: perClass,
  };
}
