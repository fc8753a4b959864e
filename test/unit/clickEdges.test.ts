import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CLICK_EDGES_FEATURES,
  EDGE_BAND,
  bandBox,
  edgeFeatures,
  edgeInputs,
  edgesProblem,
  preparedHead,
  redrawEdges,
  type EdgeHead,
} from '../../src/engine/click/clickEdges';
import {
  edgeFitImages,
  fitClickEdges,
  type ClickAnswerer,
  type EdgeFitImage,
} from '../../src/engine/click/clickEdgesFit';
import { objectIoU } from '../../src/engine/click/clickProtocol';
import { labelRegion } from '../../src/masks/rasterTools';
import { SeededRandom } from '../../src/masks/seededRandom';
import type { MaskImage } from '../../src/masks/maskImage';

const W = 64;
const H = 64;

/** A dark image with a bright disc of radius r at (cx, cy), and its mask: the disc class 1, the rest 0. */
function discScene(cx: number, cy: number, r: number): EdgeFitImage {
  const data = new Uint8Array(W * H * 3);
  const mask: MaskImage = { width: W, height: H, data: new Uint8Array(W * H) };
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const inside = (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r;
      // A little texture, so colours are not constant.
      const v = (inside ? 200 : 40) + ((x * 7 + y * 13) % 11);
      data.fill(v, (y * W + x) * 3, (y * W + x) * 3 + 3);
      mask.data[y * W + x] = inside ? 1 : 0;
    }
  return { image: { width: W, height: H, data }, mask };
}

/** A region grown (grow > 0) or shrunk by whole pixels (chessboard distance). */
function morph(region: Uint8Array, grow: number): Uint8Array {
  let cur = region;
  for (let k = 0; k < Math.abs(grow); k++) {
    const next = cur.slice();
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        let any = false;
        for (let dy = -1; dy <= 1 && !any; dy++)
          for (let dx = -1; dx <= 1; dx++) {
            const xx = Math.min(W - 1, Math.max(0, x + dx));
            const yy = Math.min(H - 1, Math.max(0, y + dy));
            if ((cur[yy * W + xx] ? 1 : 0) !== (grow > 0 ? 1 : 0)) continue;
            any = true;
            break;
          }
        if (any) next[y * W + x] = grow > 0 ? 1 : 0;
      }
    cur = next;
  }
  return cur;
}

/** A click model that misses every edge the same way: the clicked object's true region grown by `grow` pixels. */
function biasedAnswerer(images: readonly EdgeFitImage[], grow: number): { answer: ClickAnswerer; calls: () => number } {
  let n = 0;
  const answer: ClickAnswerer = async (index, prompt) => {
    const first = prompt.points[0];
    const region = labelRegion(images[index].mask, { x: first.x, y: first.y }).inside;
    return Promise.resolve({ mask: morph(region, grow), answer: ++n });
  };
  return { answer, calls: () => n };
}

const scenes = (): EdgeFitImage[] =>
  [
    [20, 22, 13],
    [40, 30, 15],
    [32, 36, 14],
    [24, 40, 12.5],
    [44, 24, 13.5],
    [30, 28, 16],
    [36, 34, 13],
    [26, 30, 14],
    [38, 38, 15],
  ].map(([x, y, r]) => discScene(x, y, r));

test('the band box holds the answer edge and EDGE_BAND pixels either side; features only in the band', () => {
  const answer = new Uint8Array(W * H);
  for (let y = 10; y < 20; y++) for (let x = 30; x < 40; x++) answer[y * W + x] = 1;
  const box = bandBox(answer, W, H)!;
  assert.deepEqual(box, { x0: 29 - EDGE_BAND, y0: 9 - EDGE_BAND, x1: 40 + 1 + EDGE_BAND, y1: 20 + 1 + EDGE_BAND });
  assert.equal(bandBox(new Uint8Array(W * H), W, H), null, 'no edge, no band');
  const { image } = discScene(32, 32, 10);
  const f = edgeFeatures(answer, image, 1, 3)!;
  assert.equal(f.inputs, edgeInputs(3));
  assert.equal(f.features.length, f.pixels.length * f.inputs);
  for (let k = 0; k < f.pixels.length; k++) {
    const x = f.pixels[k] % W;
    const y = Math.floor(f.pixels[k] / W);
    // Every band pixel lies within 2 pixels of the square's edge, and its first feature is the answer.
    const inside = x >= 30 && x < 40 && y >= 10 && y < 20;
    const depth = inside ? Math.min(x - 30, 39 - x, y - 10, 19 - y) : Math.max(30 - x, x - 39, 10 - y, y - 19);
    assert.ok(depth <= EDGE_BAND, `pixel ${x},${y} is ${depth} from the edge`);
    assert.equal(f.features[k * f.inputs], inside ? 1 : 0);
    assert.equal(f.features[k * f.inputs + 11 + 1], 1, 'the class one-hot');
  }
  // Pixels 3 deep inside are not in the band; pixels 1 inside are.
  assert.ok(!f.pixels.includes(15 * W + 35));
  assert.ok(f.pixels.includes(10 * W + 35));
});

test('an unsure head changes nothing; stored edges of another feature set or size are refused', () => {
  const { image, mask } = discScene(32, 32, 14);
  const inputs = edgeInputs(2);
  const head: EdgeHead & { classes: number } = {
    classes: 2,
    inputs,
    hidden: 4,
    mean: new Array<number>(inputs).fill(0),
    scale: new Array<number>(inputs).fill(1),
    w1: new Array<number>(inputs * 4).fill(0),
    b1: [0, 0, 0, 0],
    w2: [0, 0, 0, 0],
    b2: 0,
  };
  assert.equal(redrawEdges(mask.data, image, 1, head, []), mask.data, 'p = 0.5 everywhere: the answer itself');
  const sure = { ...head, b2: 5 };
  const all = redrawEdges(mask.data, image, 1, sure, [{ x: 32.5, y: 50.5, positive: false }]);
  assert.notEqual(all, mask.data);
  assert.equal(all[50 * W + 32], mask.data[50 * W + 32], 'a clicked pixel keeps its value');
  const stored = { features: CLICK_EDGES_FEATURES, clickModel: 'm', redrawn: [1], ...head };
  assert.equal(edgesProblem(stored), null);
  assert.match(edgesProblem({ ...stored, features: 'other' }) ?? '', /feature set other/);
  assert.match(edgesProblem({ ...stored, w2: [0] }) ?? '', /w2 has 1 values, 4 expected/);
  assert.match(edgesProblem({ ...stored, b2: NaN }) ?? '', /not finite/);
});

test('the prepared head (standardisation folded in) gives what the head gives on standardised rows', () => {
  const rand = new SeededRandom(5);
  const d = edgeInputs(3);
  const h = 6;
  const head: EdgeHead = {
    inputs: d,
    hidden: h,
    mean: Array.from({ length: d }, () => rand.normal()),
    scale: Array.from({ length: d }, () => 0.5 + rand.next()),
    w1: Array.from({ length: d * h }, () => rand.normal()),
    b1: Array.from({ length: h }, () => rand.normal()),
    w2: Array.from({ length: h }, () => rand.normal()),
    b2: 0.3,
  };
  const run = preparedHead(head);
  for (let t = 0; t < 20; t++) {
    // Rows as the features make them: the class one-hot mostly zeros.
    const row = Array.from({ length: d }, (_, j) => (j >= 11 && j !== 12 && j !== 15 ? 0 : rand.normal()));
    let o = head.b2;
    for (let k = 0; k < h; k++) {
      let z = head.b1[k];
      for (let j = 0; j < d; j++) z += (row[j] - head.mean[j]) * head.scale[j] * head.w1[j * h + k];
      if (z > 0) o += z * head.w2[k];
    }
    assert.ok(Math.abs(run(row, 0) - 1 / (1 + Math.exp(-o))) < 1e-9);
  }
});

test('fit images are spread over those saved; every third from the second is held out', () => {
  assert.deepEqual(edgeFitImages(1, 8), { fit: [0], heldOut: [] });
  assert.deepEqual(edgeFitImages(3, 8), { fit: [0, 2], heldOut: [1] });
  const many = edgeFitImages(40, 8);
  assert.equal(many.fit.length + many.heldOut.length, 8);
  assert.deepEqual(many.heldOut, [7, 22, 37]);
  assert.equal(new Set([...many.fit, ...many.heldOut]).size, 8);
});

test('learnt edges undo a click model that draws every edge two pixels out, and only where it helped', async () => {
  const images = scenes();
  const answerer = biasedAnswerer(images, 2);
  const r = await fitClickEdges(images, 2, answerer.answer, { clickModel: 'biased', seed: 3 });
  assert.ok(r.weights, r.report);
  assert.equal(edgesProblem(r.weights), null);
  assert.equal(r.weights.clickModel, 'biased');
  assert.ok(r.weights.redrawn.includes(1), r.report);
  assert.ok(answerer.calls() > 0);
  // On a new scene its redrawn answers are closer to the truth than the biased ones.
  const fresh = discScene(34, 30, 14.5);
  const object = fresh.mask.data.map((v) => (v === 1 ? 1 : 0));
  const biased = morph(object, 2);
  const redrawn = redrawEdges(biased, fresh.image, 1, r.weights, [{ x: 34.5, y: 30.5, positive: true }]);
  const before = objectIoU(object, biased, null);
  const after = objectIoU(object, redrawn, null);
  assert.ok(after > before + 0.1, `IoU ${before.toFixed(3)} -> ${after.toFixed(3)}`);
  // The same seed fits the same head.
  const again = await fitClickEdges(images, 2, biasedAnswerer(images, 2).answer, { clickModel: 'biased', seed: 3 });
  assert.deepEqual(again.weights, r.weights);
});

test('a click model already right gets no learnt edges; too few images gets none, saying why', async () => {
  const images = scenes();
  const exact = await fitClickEdges(images, 2, biasedAnswerer(images, 0).answer, { clickModel: 'exact', seed: 0 });
  assert.equal(exact.weights, null);
  assert.match(exact.report, /not kept: no class's held-out objects took fewer clicks/);
  const one = await fitClickEdges(images.slice(0, 1), 2, biasedAnswerer(images, 2).answer, {
    clickModel: 'x',
    seed: 0,
  });
  assert.equal(one.weights, null);
  assert.match(one.report, /at least 2 saved images/);
  // Cancelling stops the fit.
  await assert.rejects(
    fitClickEdges(images, 2, biasedAnswerer(images, 2).answer, {
      clickModel: 'x',
      seed: 0,
      check: () => {
        throw new Error('cancelled');
      },
    }),
    /cancelled/,
  );
});
