// Fitting learnt edges for click answers (clickEdges.ts) on masks a person saved: the standard click protocol
// (clickProtocol.ts) is played on their objects through the editor's own click path, the pixels near each
// answer's edge are sampled beside the saved mask, and the head is fitted on them. Some images are held out: the
// head redraws a class's answers only where it made that class's held-out answers closer to the saved masks.
import { IGNORE_INDEX, type MaskImage, type RgbImage } from '../../masks/maskImage';
import { SeededRandom } from '../../masks/seededRandom';
import type { ClickEdgesWeights } from '../../protocol/modelTypes';
import { CLICK_EDGES_FEATURES, EDGE_FIT, edgeFeatures, edgeInputs, fitEdgeHead, redrawEdges } from './clickEdges';
import { clickObjects, nextClick, objectIoU } from './clickProtocol';
import type { ClickPoint } from './honourClicks';

export interface EdgeFitSettings {
  /** Saved images the protocol is played on at most (spread evenly over those given). */
  images: number;
  /** Clicks per object (the first answers are those a person sees most). */
  clicksPerObject: number;
  /** Objects per image at most (a seeded choice among them). */
  objectsPerImage: number;
  /** Smallest object, in pixels (as `maskloop clicks`). */
  minArea: number;
  /** Band pixels sampled from each answer. */
  pixelsPerAnswer: number;
  /** Held-out answers of a class needed to judge it. */
  minHeldOut: number;
  /** Mean IoU gain on a class's held-out answers needed to redraw it. */
  minGain: number;
}

export const DEFAULT_EDGE_FIT: EdgeFitSettings = {
  images: 8,
  clicksPerObject: 4,
  objectsPerImage: 24,
  minArea: 400,
  pixelsPerAnswer: 256,
  minHeldOut: 4,
  minGain: 0.002,
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

export interface EdgeFitResult {
  weights: ClickEdgesWeights | null;
  /** What became of it, in words. */
  report: string;
  /** Held-out answers per class and their mean IoU without and with the head. */
  heldOut: { classIndex: number; answers: number; without: number; with: number }[];
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

/**
 * Plays the protocol on every object (at most `objectsPerImage`) of an image: each answer with its object's class,
 * the object and the clicks so far.
 */
async function playImage(
  index: number,
  item: EdgeFitImage,
  s: EdgeFitSettings,
  rng: SeededRandom,
  answer: ClickAnswerer,
  check: () => void,
  each: (a: {
    classIndex: number;
    object: Uint8Array;
    ignore: Uint8Array;
    mask: Uint8Array;
    points: ClickPoint[];
  }) => void,
): Promise<void> {
  const { mask } = item;
  const ignore = mask.data.map((v) => (v === IGNORE_INDEX ? 1 : 0));
  let objects = clickObjects(mask, s.minArea);
  if (objects.length > s.objectsPerImage) objects = rng.shuffle(objects).slice(0, s.objectsPerImage);
  for (const obj of objects) {
    const points: ClickPoint[] = [];
    let pred: Uint8Array | null = null;
    let previous: number | undefined;
    for (let c = 0; c < s.clicksPerObject; c++) {
      check();
      const click = nextClick(obj.inside, pred, ignore, mask.width, mask.height);
      if (!click) break;
      points.push(click);
      const r = await answer(index, {
        points: points.slice(),
        ...(previous !== undefined ? { continueFrom: previous } : {}),
      });
      previous = r.answer;
      pred = r.mask;
      each({ classIndex: obj.classIndex, object: obj.inside, ignore, mask: r.mask, points: points.slice() });
    }
  }
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
    o.onProgress?.(`learning click edges: answering clicks on saved image ${k + 1} of ${fit.length}`, k, total);
    await playImage(i, images[i], s, rng, answer, check, (a) => {
      answers++;
      const f = edgeFeatures(a.mask, images[i].image, a.classIndex, classes);
      if (!f) return;
      const usable: number[] = [];
      for (let p = 0; p < f.pixels.length; p++) if (!a.ignore[f.pixels[p]]) usable.push(p);
      const take = usable.length <= s.pixelsPerAnswer ? usable : rng.shuffle(usable).slice(0, s.pixelsPerAnswer);
      for (const p of take) {
        for (let j = 0; j < inputs; j++) rows.push(f.features[p * inputs + j]);
        labels.push(a.object[f.pixels[p]] ? 1 : 0);
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
  const judged = new Map<number, { answers: number; without: number; with: number }>();
  for (const [k, i] of heldOut.entries()) {
    o.onProgress?.(
      `learning click edges: judging on held-out image ${k + 1} of ${heldOut.length}`,
      fit.length + k,
      total,
    );
    await playImage(i, images[i], s, rng, answer, check, (a) => {
      const redrawn = redrawEdges(a.mask, images[i].image, a.classIndex, withClasses, a.points);
      const j = judged.get(a.classIndex) ?? { answers: 0, without: 0, with: 0 };
      j.answers++;
      j.without += objectIoU(a.object, a.mask, a.ignore);
      j.with += objectIoU(a.object, redrawn, a.ignore);
      judged.set(a.classIndex, j);
    });
  }
  const perClass = [...judged.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([classIndex, j]) => ({
      classIndex,
      answers: j.answers,
      without: j.without / j.answers,
      with: j.with / j.answers,
    }));
  const redrawn = perClass
    .filter((c) => c.answers >= s.minHeldOut && c.with - c.without > s.minGain)
    .map((c) => c.classIndex);
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  const gains = perClass
    .map((c) => `${c.classIndex}: ${c.without.toFixed(3)} -> ${c.with.toFixed(3)} (${c.answers})`)
    .join(', ');
  const where = `fitted on ${labels.length} edge pixels of ${answers} answers on ${fit.length} saved image(s), judged on ${heldOut.length} held out (class: mean IoU without -> with (answers): ${gains || 'none'}), in ${seconds} s`;
  if (redrawn.length === 0)
    return { weights: null, report: `not kept: no class's held-out answers gained; ${where}`, heldOut: perClass };
  return {
    weights: { features: CLICK_EDGES_FEATURES, clickModel: o.clickModel, classes, redrawn, ...head },
    report: `kept for class(es) ${redrawn.join(', ')}; ${where}`,
    heldOut: perClass,
  };
}
