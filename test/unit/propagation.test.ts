import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_FUSION,
  NO_CELL,
  PROPAGATION_CELLS,
  carryMask,
  carriedLikelihoods,
  chessboardDistance,
  fuseWithCarried,
  recordErrorShare,
  snapToEdges,
  trackRecord,
} from '../../src/engine/inference/propagation';
import { denseFlow, flowsComputedSoFar, forgetFlows } from '../../src/engine/inference/opticalFlow';
import { boxMean } from '../../src/engine/inference/guidedFilter';
import {
  CARRIED_BOX_RADIUS,
  CARRIED_PLANES,
  carriedPlanes,
  carriedView,
  geometricMean,
  type CarriedView,
} from '../../src/engine/inference/carriedView';
import { PIXEL_FEATURE_COUNT } from '../../src/engine/inference/pixelFeatures';
import { runPixelHead } from '../../src/engine/inference/pixelHeadOnnx';
import { pixelFeaturesFast } from '../../src/engine/inference/pixelFeaturesOnnx';
import { setInferenceChoice } from '../../src/engine/inference/onnxInference';
import { carryBetween, suggestFromNeighbours } from '../../src/engine/inference/sequenceSuggestion';
import {
  applySequenceHead,
  carriedBand,
  drawPair,
  SEQUENCE_HEAD_BAND,
  SEQUENCE_HEAD_BAND_SHARE,
  SEQUENCE_HEAD_PAIR_SAMPLES,
  fitSequenceHead,
  SEQUENCE_HEAD_MAX_PAIRS,
  SequenceHeadCache,
  type SequenceHeadFitter,
  type SequencePair,
} from '../../src/engine/inference/sequenceHead';
import { IGNORE_INDEX, type MaskImage, type RgbImage } from '../../src/masks/maskImage';
import { SeededRandom } from '../../src/masks/seededRandom';
import { MAX_NEIGHBOURS } from '../../src/protocol/modelProtocol';

/** A uniform flow field of (u, v) over a width x height image. */
function uniformFlow(width: number, height: number, u: number, v: number): Float32Array {
  const f = new Float32Array(width * height * 2);
  for (let i = 0; i < width * height; i++) {
    f[2 * i] = u;
    f[2 * i + 1] = v;
  }
  return f;
}

/** A mask with one rectangle of class `label` (x0..x1-1, y0..y1-1) on background. */
function rectMask(width: number, height: number, x0: number, y0: number, x1: number, y1: number, label = 1): MaskImage {
  const data = new Uint8Array(width * height);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[y * width + x] = label;
  return { width, height, data };
}

/** A textured frame (smooth random blobs, so the flow has something to follow) with a bright square at (ox, oy). */
function texturedFrame(width: number, height: number, ox: number, oy: number, size: number): RgbImage {
  const rng = new SeededRandom(5);
  const waves = Array.from({ length: 6 }, () => ({
    fx: rng.range(0.05, 0.2),
    fy: rng.range(0.05, 0.2),
    phase: rng.range(0, 6),
  }));
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      // The background texture moves with the square, as when the camera pans.
      const bx = x - ox;
      const by = y - oy;
      let v = 100;
      for (const w of waves) v += 12 * Math.sin(w.fx * bx + w.fy * by + w.phase);
      const inside = x >= ox && x < ox + size && y >= oy && y < oy + size;
      if (inside) v = 220 + 20 * Math.sin(0.5 * bx) * Math.cos(0.5 * by);
      data.fill(Math.max(0, Math.min(255, Math.round(v))), (y * width + x) * 3, (y * width + x) * 3 + 3);
    }
  return { width, height, data };
}

/** Three 96x72 frames of a camera panning 4 px right and 3 px down each frame, a bright 24-pixel square with the texture. */
function panningFrames(): { W: number; H: number; frames: RgbImage[] } {
  const W = 96;
  const H = 72;
  return {
    W,
    H,
    frames: [texturedFrame(W, H, 26, 17, 24), texturedFrame(W, H, 30, 20, 24), texturedFrame(W, H, 34, 23, 24)],
  };
}

test('chessboard distance counts diagonal steps as one', () => {
  const seed = new Uint8Array(25);
  seed[12] = 1; // the centre of 5x5
  const d = chessboardDistance(seed, 5, 5);
  assert.deepEqual(Array.from(d), [2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 1, 0, 1, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
  assert.ok(
    chessboardDistance(new Uint8Array(4), 2, 2).every((v) => v === 255),
    'no seed: the cap',
  );
});

test('a mask carried by a uniform flow moves with it; what comes from outside the frame or from ignore is not carried', () => {
  const W = 40;
  const H = 30;
  const mask = rectMask(W, H, 10, 8, 20, 18);
  mask.data[0] = IGNORE_INDEX;
  // This frame sees everything 3 px right and 2 px down of the neighbour: each pixel is found at (-3, -2).
  const carried = carryMask(mask, uniformFlow(W, H, -3, -2), uniformFlow(W, H, 3, 2), 2);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      const sx = x - 3;
      const sy = y - 2;
      if (sx < 0 || sy < 0) {
        assert.equal(carried.labels[i], IGNORE_INDEX, `(${x},${y}) comes from outside`);
        assert.equal(carried.cells[i], NO_CELL);
      } else if (sx === 0 && sy === 0) {
        assert.equal(carried.labels[i], IGNORE_INDEX, 'an ignore pixel carries nothing');
      } else {
        assert.equal(carried.labels[i], mask.data[sy * W + sx], `(${x},${y})`);
        assert.equal(carried.cells[i] % 2, 1, 'flows that agree');
      }
    }
  // On the carried rectangle's edge the distance bin is 0, on both sides of it; ten pixels away, the 8-15 bin (4).
  assert.equal(carried.cells[(8 + 2) * W + (15 + 3)] >> 1, 0);
  assert.equal(carried.cells[(8 + 2) * W + (20 + 3)] >> 1, 0, 'the background side of the edge');
  assert.equal(carried.cells[(H - 1) * W + 3] >> 1, 4, 'ten pixels from the square');
});

test('flows that disagree (an occlusion) mark the carried pixels as such', () => {
  const W = 20;
  const H = 10;
  const mask = rectMask(W, H, 5, 2, 10, 8);
  const backward = uniformFlow(W, H, -2, 0);
  const forward = uniformFlow(W, H, 2, 0);
  // Where the neighbour's columns 10-13 go forward, they land elsewhere: no way back.
  for (let y = 0; y < H; y++) for (let x = 10; x < 14; x++) forward[2 * (y * W + x)] = 9;
  const carried = carryMask(mask, backward, forward, 2);
  for (let y = 0; y < H; y++)
    for (let x = 2; x < W; x++) {
      const source = x - 2;
      const agrees = carried.cells[y * W + x] % 2 === 1;
      assert.equal(agrees, source < 10 || source >= 14, `(${x},${y})`);
    }
});

test('a track record counts carried against true classes per cell; likelihoods lean on the prior where it holds few', () => {
  const W = 30;
  const H = 20;
  const carried = carryMask(rectMask(W, H, 5, 5, 15, 15), uniformFlow(W, H, 0, 0), uniformFlow(W, H, 0, 0), 2);
  // The truth: the square one pixel wider on the right, and an ignore pixel that is not counted.
  const truth = rectMask(W, H, 5, 5, 16, 15);
  truth.data[0] = IGNORE_INDEX;
  const record = trackRecord(carried, truth, 2);
  const at = (cell: number, c: number, t: number): number => record.counts[(cell * 2 + c) * 2 + t];
  let total = 0;
  for (const v of record.counts) total += v;
  assert.equal(total, W * H - 1);
  const edge = 0 * 2 + 1; // distance 0, flows agree
  assert.equal(at(edge, 0, 1), 10, 'the new column: background carried onto the square, all on the carried edge');
  assert.equal(at(edge, 1, 0), 0);
  assert.equal(recordErrorShare(record), 10 / (W * H - 1));
  const settings = { priorError: 0.1, priorPixels: 20, cellPixels: 200, modelWeight: 1, snapRadius: 0 };
  const L = carriedLikelihoods(record, 2, settings);
  assert.equal(L.length, PROPAGATION_CELLS * 4);
  const l = (cell: number, c: number, t: number): number => L[(cell * 2 + c) * 2 + t];
  // P(carried background | true square) on the edge: the 10 seen among the square's 110 pixels, with the
  // prior, pooled over the record; then the edge cell's own count drawn toward that.
  const pooled = (10 + 20 * 0.1) / (110 + 20);
  const squareEdge = at(edge, 0, 1) + at(edge, 1, 1);
  assert.ok(Math.abs(Math.exp(l(edge, 0, 1)) - (10 + 200 * pooled) / (squareEdge + 200)) < 1e-12);
  // Deep in the background, the record saw only right labels: carrying background there is surer than the prior.
  const deep = 4 * 2 + 1;
  assert.ok(at(deep, 0, 0) > 0);
  assert.ok(Math.exp(l(deep, 0, 0)) > 0.9);
  const none = carriedLikelihoods(null, 2, settings);
  for (let cell = 0; cell < PROPAGATION_CELLS; cell++) {
    assert.ok(Math.abs(Math.exp(none[(cell * 2 + 1) * 2 + 1]) - 0.9) < 1e-12, 'no record: the prior');
    assert.ok(Math.abs(Math.exp(none[(cell * 2 + 1) * 2 + 0]) - 0.1) < 1e-12);
  }
});

test('fusion: a sure carried label beats an unsure model, a sure model beats an unreliable one, and flat likelihoods weigh nothing', () => {
  const k = 2;
  const carried = {
    width: 4,
    height: 1,
    labels: new Uint8Array([1, 1, 1, IGNORE_INDEX]),
    cells: new Uint8Array([11, 0, 11, NO_CELL]),
  };
  // Model: pixel 0 leans to class 0 (0.6), pixel 1 is sure of 0 (0.99), pixel 2 agrees with the carried label, pixel 3 has no carried label.
  const probabilities = new Float32Array([0.6, 0.4, 0.99, 0.01, 0.2, 0.8, 0.3, 0.7]);
  const model = {
    classMap: new Uint8Array([0, 0, 1, 1]),
    confidence: new Uint8Array([153, 252, 204, 179]),
    probabilities,
  };
  const likelihoods = (pRight: (cell: number) => number): Float64Array => {
    const L = new Float64Array(PROPAGATION_CELLS * k * k);
    for (let cell = 0; cell < PROPAGATION_CELLS; cell++)
      for (let c = 0; c < k; c++)
        for (let t = 0; t < k; t++) L[(cell * k + c) * k + t] = Math.log(c === t ? pRight(cell) : 1 - pRight(cell));
    return L;
  };
  // Deep inside with flows that agree, carrying was right 98% of the time; on the boundary 70%.
  const L = likelihoods((cell) => (cell === 11 ? 0.98 : 0.7));
  const fused = fuseWithCarried(model, carried, L, k);
  assert.deepEqual(Array.from(fused.classMap), [1, 0, 1, 1]);
  assert.equal(fused.confidence[3], 179, 'no carried label: the model as it was');
  assert.equal(fused.followsCarried, 2 / 4);
  // Untrained model (no probabilities): the likelihoods decide.
  const untrained = fuseWithCarried({ classMap: new Uint8Array(4), confidence: new Uint8Array(4) }, carried, L, k);
  assert.deepEqual(Array.from(untrained.classMap), [1, 1, 1, 0]);
  // Flat likelihoods (frames that are no sequence: the same label carried whatever the truth): the model's class, trained or not.
  const flat = new Float64Array(PROPAGATION_CELLS * k * k).fill(Math.log(0.5));
  assert.deepEqual(Array.from(fuseWithCarried(model, carried, flat, k).classMap), [0, 0, 1, 1]);
  const blank = { classMap: new Uint8Array([0, 1, 0, 0]), confidence: new Uint8Array(4) };
  assert.deepEqual(Array.from(fuseWithCarried(blank, carried, flat, k).classMap), [0, 1, 0, 0]);
});

test('OpenCV flow follows a textured frame shifted by a few pixels, and carries its mask there', async () => {
  const W = 96;
  const H = 72;
  const a = texturedFrame(W, H, 30, 20, 24);
  const b = texturedFrame(W, H, 34, 23, 24);
  const flow = await denseFlow(a, b);
  assert.equal(flow.length, W * H * 2);
  // Away from the borders the flow from a to b is about (4, 3).
  const mean = meanFlow(flow, W, H, 16);
  assert.ok(Math.abs(mean.u - 4) < 0.5 && Math.abs(mean.v - 3) < 0.5, `mean flow ${mean.u}, ${mean.v}`);
  const maskA = rectMask(W, H, 30, 20, 54, 44);
  const truthB = rectMask(W, H, 34, 23, 58, 47);
  const carried = await carryBetween({ image: a, mask: maskA }, b, 2);
  const record = trackRecord(carried, truthB, 2);
  assert.ok(recordErrorShare(record) < 0.01, `carried mask ${recordErrorShare(record)} wrong`);
  // Copying the mask unmoved would get about 7 columns and rows of the square wrong.
  let copyWrong = 0;
  for (let i = 0; i < W * H; i++) if (maskA.data[i] !== truthB.data[i]) copyWrong++;
  assert.ok(copyWrong / (W * H) > 0.04);
  await assert.rejects(denseFlow(a, texturedFrame(W + 2, H, 0, 0, 4)), /one size/);
  // Flowed at half size (a larger image's case), the flow still comes back at full size, in full-size pixels.
  const shrunk = await denseFlow(a, b, 48);
  assert.equal(shrunk.length, W * H * 2);
  const centre = meanFlow(shrunk, W, H, 16);
  assert.ok(
    Math.abs(centre.u - 4) < 0.75 && Math.abs(centre.v - 3) < 0.75,
    `mean flow shrunk ${centre.u}, ${centre.v}`,
  );
});
test('snapping moves a carried boundary that landed a pixel off onto the colour edge', () => {
  // Dark left half, bright right half; the object is the bright half, but the carried mask starts a pixel early.
  const W = 40;
  const H = 12;
  const k = 2;
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) data.fill(x < 20 ? 40 : 200, (y * W + x) * 3, (y * W + x) * 3 + 3);
  const frame: RgbImage = { width: W, height: H, data };
  const labels = new Uint8Array(W * H);
  const cells = new Uint8Array(W * H);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      labels[y * W + x] = x >= 19 ? 1 : 0;
      const d = x >= 19 ? x - 19 : 18 - x; // chessboard distance to the carried boundary
      cells[y * W + x] = 2 * (d === 0 ? 0 : d === 1 ? 1 : d < 4 ? 2 : d < 8 ? 3 : d < 16 ? 4 : 5) + 1;
    }
  const carried = { width: W, height: H, labels, cells };
  // Carried labels are right 70% of the time on the boundary, 98% deep inside.
  const L = new Float64Array(PROPAGATION_CELLS * k * k);
  for (let cell = 0; cell < PROPAGATION_CELLS; cell++) {
    const right = cell < 4 ? 0.7 : 0.98;
    for (let c = 0; c < k; c++)
      for (let t = 0; t < k; t++) L[(cell * k + c) * k + t] = Math.log(c === t ? right : 1 - right);
  }
  // A model with no opinion: everything rests on the carried labels and the image.
  const model = {
    classMap: new Uint8Array(W * H),
    confidence: new Uint8Array(W * H).fill(128),
    probabilities: new Float32Array(W * H * k).fill(0.5),
  };
  const fused = fuseWithCarried(model, carried, L, k);
  assert.equal(fused.classMap[5 * W + 19], 1, 'fused alone keeps the carried boundary');
  const snapped = snapToEdges(fused, carried, frame, k, { ...DEFAULT_FUSION, snapRadius: 2 });
  for (let x = 0; x < W; x++) assert.equal(snapped.classMap[5 * W + x], x >= 20 ? 1 : 0, `column ${x}`);
  assert.ok(Math.abs(snapped.followsCarried - (W * H - H) / (W * H)) < 1e-9);
  // Radius 0: as fused.
  assert.equal(snapToEdges(fused, carried, frame, k, { ...DEFAULT_FUSION, snapRadius: 0 }), fused);
});

function meanFlow(flow: Float32Array, W: number, H: number, margin: number): { u: number; v: number } {
  let u = 0;
  let v = 0;
  let n = 0;
  for (let y = margin; y < H - margin; y++)
    for (let x = margin; x < W - margin; x++) {
      u += flow[2 * (y * W + x)];
      v += flow[2 * (y * W + x) + 1];
      n++;
    }
  return { u: u / n, v: v / n };
}

test('a sequence suggestion follows the neighbour and reports the track record of the pair before it', async () => {
  const { W, H, frames } = panningFrames();
  const masks = [rectMask(W, H, 26, 17, 50, 41), rectMask(W, H, 30, 20, 54, 44)];
  const truth = rectMask(W, H, 34, 23, 58, 47);
  // A model that sees nothing, sure of background everywhere, but only 70% sure.
  const probabilities = new Float32Array(W * H * 2);
  for (let i = 0; i < W * H; i++) {
    probabilities[2 * i] = 0.7;
    probabilities[2 * i + 1] = 0.3;
  }
  const model = { classMap: new Uint8Array(W * H), confidence: new Uint8Array(W * H).fill(178), probabilities };
  const s = await suggestFromNeighbours(
    frames[2],
    [
      { image: frames[1], mask: masks[1] },
      { image: frames[0], mask: masks[0] },
    ],
    model,
    2,
  );
  assert.ok(s.trackRecordError !== null && s.trackRecordError < 0.01);
  let wrong = 0;
  for (let i = 0; i < W * H; i++) if (s.classMap[i] !== truth.data[i]) wrong++;
  assert.ok(wrong / (W * H) < 0.01, `${wrong} pixels wrong`);
  assert.ok(s.followsCarried > 0.95);
});

test('an untrained model does not follow frames whose masks do not move with them', async () => {
  const { W, H, frames } = panningFrames();
  // The masks do not move with the images: carrying the first onto the second gets both squares wrong, so
  // a carried square is no more likely on the square than off it.
  const masks = [rectMask(W, H, 60, 40, 84, 64), rectMask(W, H, 30, 20, 54, 44)];
  const untrained = { classMap: new Uint8Array(W * H), confidence: new Uint8Array(W * H).fill(128) };
  const near = { image: frames[1], mask: masks[1] };
  const s = await suggestFromNeighbours(frames[2], [near, { image: frames[0], mask: masks[0] }], untrained, 2);
  assert.ok(s.trackRecordError !== null && s.trackRecordError > 0.1);
  let square = 0;
  for (const v of s.classMap) square += v;
  assert.ok(square < 0.1 * 24 * 24, `${square} pixels follow the carried square`);
  // With only the near frame there is no record to doubt it: the carried mask is the suggestion.
  const alone = await suggestFromNeighbours(frames[2], [near], untrained, 2);
  assert.equal(alone.trackRecordError, null);
  assert.ok(alone.followsCarried > 0.95);
});

test('the fusion is tried on the neighbour first: where it does no better than the model there, the model is the suggestion', async () => {
  const { W, H, frames } = panningFrames();
  const masks = [rectMask(W, H, 26, 17, 50, 41), rectMask(W, H, 30, 20, 54, 44)];
  const neighbours = [
    { image: frames[1], mask: masks[1] },
    { image: frames[0], mask: masks[0] },
  ];
  const sure = (mask: MaskImage, p: number) => {
    const probabilities = new Float32Array(W * H * 2);
    for (let i = 0; i < W * H; i++) {
      probabilities[2 * i + mask.data[i]] = p;
      probabilities[2 * i + 1 - mask.data[i]] = 1 - p;
    }
    return { classMap: mask.data.slice(), confidence: new Uint8Array(W * H).fill(Math.round(255 * p)), probabilities };
  };
  const blind = sure(rectMask(W, H, 0, 0, 0, 0), 0.7);
  // A model that got the neighbour exactly right: fusing cannot do better there, so nothing is followed.
  const perfect = await suggestFromNeighbours(frames[2], neighbours, blind, 2, sure(masks[1], 0.999));
  assert.equal(perfect.followed, false);
  assert.deepEqual(perfect.check, { modelError: 0, fusedError: 0 });
  assert.deepEqual(perfect.classMap, blind.classMap);
  // A model as blind on the neighbour as here: fusing found the square there, so it is followed here.
  const helped = await suggestFromNeighbours(frames[2], neighbours, blind, 2, blind);
  assert.equal(helped.followed, true);
  assert.ok(helped.check !== null && helped.check.fusedError < 0.01 && helped.check.modelError > 0.05);
  assert.ok(helped.followsCarried > 0.95);
});

/**
 * A bright square that jumps between the two sides of a still background: no flow follows it, but its colour
 * says where it is. Frames and masks 0..count-1, 96x72.
 */
function jumpingSquare(count: number): { frames: RgbImage[]; masks: MaskImage[] } {
  const W = 96;
  const H = 72;
  const at = (j: number): [number, number] => [j % 2 === 0 ? 8 : 62, 20 + 2 * j];
  const still = texturedFrame(W, H, 0, 0, 0);
  const js = Array.from({ length: count }, (_, j) => j);
  const frames = js.map((j) => {
    const f = texturedFrame(W, H, ...at(j), 24);
    // The background stays where it is: only the square moves.
    const data = still.data.slice();
    const [x0, y0] = at(j);
    for (let y = y0; y < y0 + 24; y++)
      for (let x = x0; x < x0 + 24; x++)
        for (let c = 0; c < 3; c++) data[(y * W + x) * 3 + c] = f.data[(y * W + x) * 3 + c];
    return { width: W, height: H, data };
  });
  const masks = js.map((j) => rectMask(W, H, at(j)[0], at(j)[1], at(j)[0] + 24, at(j)[1] + 24));
  return { frames, masks };
}

/** Frame j as the sequence head reads it: frame j-1's mask carried onto it, frame j-2's as the second observation. */
function viewOf(frames: RgbImage[], masks: MaskImage[], j: number): Promise<CarriedView> {
  const at = (i: number) => ({ image: frames[i], mask: masks[i] });
  return carriedView(frames[j], at(j - 1), 2, j >= 2 ? at(j - 2) : undefined);
}

/** A frame carried from itself without motion: the carried probabilities given, both flows zero. */
function stillView(frame: RgbImage, carried: Float32Array, classes: number): CarriedView {
  const still = new Float32Array(frame.width * frame.height * 2);
  return { probabilities: carried, planes: carriedPlanes(frame, frame, still, still, carried, classes) };
}

test('the sequence head learns what carrying gets wrong in a sequence: an object that moves too far for the flow', async () => {
  const W = 96;
  const H = 72;
  const { frames, masks } = jumpingSquare(5);
  const history: SequencePair[] = [];
  // The pairs beyond the record pair (frame 2 carried onto frame 3, which the suggestion draws itself).
  for (let j = 2; j >= 1; j--) history.push(await drawPair(frames[j], masks[j], await viewOf(frames, masks, j), 2));
  const neighbours = [3, 2, 1, 0].map((j) => ({ image: frames[j], mask: masks[j] }));
  const untrained = { classMap: new Uint8Array(W * H), confidence: new Uint8Array(W * H).fill(128) };
  const wrongShare = (classMap: Uint8Array): number => {
    let wrong = 0;
    for (let i = 0; i < W * H; i++) if (classMap[i] !== masks[4].data[i]) wrong++;
    return wrong / (W * H);
  };
  const carried = await suggestFromNeighbours(frames[4], neighbours, untrained, 2);
  assert.equal(carried.learnedPairs, 0);
  const withHead = () =>
    suggestFromNeighbours(frames[4], neighbours, untrained, 2, undefined, undefined, undefined, history);
  const learned = await withHead();
  assert.equal(learned.learnedPairs, 3);
  assert.equal(learned.followed, true);
  // The record pair's draw comes back, to be kept for the next frame: the same as drawing it apart.
  const drawn3 = await drawPair(frames[3], masks[3], await viewOf(frames, masks, 3), 2);
  assert.deepEqual(learned.recordDraw, drawn3);
  const before = wrongShare(carried.classMap);
  const after = wrongShare(learned.classMap);
  assert.ok(before > 0.05, `the carried mask alone gets ${(100 * before).toFixed(1)}% wrong`);
  assert.ok(after < 0.02, `the head gets ${(100 * after).toFixed(1)}% wrong against ${(100 * before).toFixed(1)}%`);
  // It was tried on frame 3 first, fitted without frame 3's own pair, and did better there than the fusion.
  const tried = learned.check;
  assert.ok(tried?.headError !== undefined && tried.headError < tried.fusedError, JSON.stringify(tried));
  // A model that got frame 3 exactly right leaves nothing to do better there: neither is followed.
  const truthOf3 = new Float32Array(W * H * 2);
  for (let i = 0; i < W * H; i++) truthOf3[2 * i + masks[3].data[i]] = 1;
  const sure = {
    classMap: masks[3].data.slice(),
    confidence: new Uint8Array(W * H).fill(255),
    probabilities: truthOf3,
  };
  const blind = { ...untrained, probabilities: new Float32Array(W * H * 2).fill(0.5) };
  const kept = await suggestFromNeighbours(frames[4], neighbours, blind, 2, sure, undefined, undefined, history);
  assert.equal(kept.followed, false);
  assert.equal(kept.learnedPairs, 0);
  assert.equal(kept.check?.modelError, 0);
  // Fitted again on the same pairs: the same head, the same suggestion.
  const again = await withHead();
  let differ = 0;
  for (let i = 0; i < W * H; i++) if (again.classMap[i] !== learned.classMap[i]) differ++;
  assert.equal(differ, 0, `${differ} pixels differ`);
});

test("with the model's prediction of the neighbour, the head is taken where it beats the model there, a tie with the fusion included", async () => {
  const W = 96;
  const H = 72;
  // A square that stays put: carrying is exact, so the fusion gets the neighbour right and the head cannot do
  // better there, only as well.
  const frames = Array.from({ length: 5 }, () => texturedFrame(W, H, 30, 20, 24));
  const masks = frames.map(() => rectMask(W, H, 30, 20, 54, 44));
  const history: SequencePair[] = [];
  for (let j = 2; j >= 1; j--) history.push(await drawPair(frames[j], masks[j], await viewOf(frames, masks, j), 2));
  const neighbours = [3, 2, 1, 0].map((j) => ({ image: frames[j], mask: masks[j] }));
  // A model that sees no square, here and on the neighbour.
  const probabilities = new Float32Array(W * H * 2);
  for (let i = 0; i < W * H; i++) {
    probabilities[2 * i] = 0.7;
    probabilities[2 * i + 1] = 0.3;
  }
  const blind = { classMap: new Uint8Array(W * H), confidence: new Uint8Array(W * H).fill(179), probabilities };
  const s = await suggestFromNeighbours(frames[4], neighbours, blind, 2, blind, undefined, undefined, history);
  const tried = s.check;
  assert.ok(tried?.headError !== undefined, JSON.stringify(tried));
  assert.ok(tried.headError >= tried.fusedError, `the head does no better than the fusion: ${JSON.stringify(tried)}`);
  assert.ok(tried.headError < tried.modelError, JSON.stringify(tried));
  assert.equal(s.followed, true);
  assert.equal(s.learnedPairs, 3);
  let wrong = 0;
  for (let i = 0; i < W * H; i++) if (s.classMap[i] !== masks[4].data[i]) wrong++;
  assert.ok(wrong / (W * H) < 0.01, `${wrong} pixels wrong`);
});

test('walking down a sequence fits one head per frame: the head tried on the neighbour is the one it was suggested with', async () => {
  const { frames, masks } = jumpingSquare(11);
  const n = frames[0].width * frames[0].height;
  const untrained = { classMap: new Uint8Array(n), confidence: new Uint8Array(n).fill(128) };
  const cache = new SequenceHeadCache();
  // Pairs kept by the files they came from, as the model process keeps them: "j" is frame j-1 carried onto j
  // (with frame j-2 as the second observation).
  const kept = new Map<number, SequencePair>();
  const pairOf = async (j: number): Promise<SequencePair> => {
    let pair = kept.get(j);
    if (!pair) {
      pair = await drawPair(frames[j], masks[j], await viewOf(frames, masks, j), 2);
      kept.set(j, pair);
    }
    return pair;
  };
  // Suggests frame t from the saved frames before it (at most MAX_NEIGHBOURS, nearest first).
  const suggest = async (t: number, fit: SequenceHeadFitter, keep: boolean) => {
    const run = Array.from({ length: Math.min(t, MAX_NEIGHBOURS) }, (_, i) => t - 1 - i);
    const history: SequencePair[] = [];
    for (let i = 1; i + 1 < run.length && history.length < SEQUENCE_HEAD_MAX_PAIRS; i++)
      history.push(await pairOf(run[i]));
    const s = await suggestFromNeighbours(
      frames[t],
      run.map((j) => ({ image: frames[j], mask: masks[j] })),
      untrained,
      2,
      undefined,
      undefined,
      undefined,
      history,
      fit,
    );
    // The record pair's draw is kept for the next frame, as the model process keeps it.
    if (keep && s.recordDraw) kept.set(t - 1, s.recordDraw);
    return s;
  };
  for (let t = 3; t < frames.length; t++) {
    const fitsBefore = cache.fits;
    const s = await suggest(t, cache.fit, true);
    assert.equal(s.followed, true, `frame ${t}`);
    // The 3rd frame has a single pair beyond its record pair: that head and its own are fitted. From the 4th
    // on, the head tried on the neighbour is the neighbour's own, kept: one fit per frame, also once the run
    // is longer than the heads read (MAX_NEIGHBOURS frames: 7 pairs each).
    assert.equal(cache.fits - fitsBefore, t === 3 ? 2 : 1, `frame ${t}: ${cache.fits - fitsBefore} fits`);
    assert.equal(s.learnedPairs, Math.min(t - 1, SEQUENCE_HEAD_MAX_PAIRS), `frame ${t}`);
    // The same suggestion as fitting every head afresh.
    const fresh = await suggest(t, fitSequenceHead, false);
    assert.deepEqual(fresh.classMap, s.classMap, `frame ${t}`);
    assert.deepEqual(fresh.check, s.check, `frame ${t}`);
  }
  assert.equal(MAX_NEIGHBOURS, SEQUENCE_HEAD_MAX_PAIRS + 3);
});

test('a sequence head fit stopped by its check (a cancelled request) is not kept', async () => {
  const { frames, masks } = jumpingSquare(2);
  const pair = await drawPair(frames[1], masks[1], await viewOf(frames, masks, 1), 2);
  const cache = new SequenceHeadCache();
  let fitting = 0;
  const stop = (): void => {
    throw new Error('cancelled');
  };
  await assert.rejects(
    cache.fit([pair], 2, () => fitting++, stop),
    /cancelled/,
  );
  assert.equal(fitting, 1);
  const head = await cache.fit([pair], 2, () => fitting++);
  assert.equal(fitting, 2, 'fitted afresh: the stopped fit was not kept');
  assert.deepEqual(head, await fitSequenceHead([pair], 2));
  await cache.fit([pair], 2, () => fitting++);
  assert.equal(fitting, 2, 'then kept');
});

test('the sequence head weighs the model in: a uniform model changes nothing, a sure one wins where the head is unsure', async () => {
  const W = 40;
  const H = 30;
  const frame = texturedFrame(W, H, 10, 8, 12);
  const mask = rectMask(W, H, 10, 8, 22, 20);
  const carried = new Float32Array(W * H * 2);
  for (let i = 0; i < W * H; i++) carried[2 * i + mask.data[i]] = 1;
  const head = await fitSequenceHead([await drawPair(frame, mask, stillView(frame, carried, 2), 2)], 2);
  assert.ok(head);
  const alone = await applySequenceHead(head, frame, stillView(frame, carried, 2), 2);
  const uniform = await applySequenceHead(
    head,
    frame,
    stillView(frame, carried, 2),
    2,
    new Float32Array(W * H * 2).fill(0.5),
  );
  assert.deepEqual(uniform.classMap, alone.classMap);
  let right = 0;
  for (let i = 0; i < W * H; i++) if (alone.classMap[i] === mask.data[i]) right++;
  assert.ok(right / (W * H) > 0.98);
  // A model sure of the square everywhere, read with its full weight against a head told nothing (uniform carried).
  const flat = new Float32Array(W * H * 2).fill(0.5);
  const sure = new Float32Array(W * H * 2);
  for (let i = 0; i < W * H; i++) sure[2 * i + 1] = 1 - 1e-6;
  const blind = await applySequenceHead(head, frame, stillView(frame, flat, 2), 2, sure, 100);
  assert.ok(blind.classMap.every((c) => c === 1));
});

test("the sequence head draws half its pixels from within 4 pixels of the carried mask's edges", async () => {
  // 40x30: class 1 on the left 10 columns of the carried mask, class 0 elsewhere.
  const width = 40;
  const height = 30;
  const carried = new Float32Array(width * height * 2);
  for (let i = 0; i < width * height; i++) carried[i * 2 + (i % width < 10 ? 1 : 0)] = 1;
  const band = carriedBand(carried, width, height, 2, SEQUENCE_HEAD_BAND);
  // The edge lies between columns 9 and 10 (the left pixel counts as the edge): columns 5-13 are near it.
  const columns = new Set([...band].map((i) => i % width));
  assert.deepEqual(
    [...columns].sort((a, b) => a - b),
    [5, 6, 7, 8, 9, 10, 11, 12, 13],
  );
  assert.equal(band.length, 9 * height);
  assert.equal(carriedBand(new Float32Array(width * height * 2).fill(0.5), width, height, 2, 4).length, 0);
  // The drawn pixels: uniform ones hit columns 5-13 about 9/40 of the time, the band's always.
  const frame: RgbImage = { width, height, data: new Uint8Array(width * height * 3).fill(128) };
  const mask: MaskImage = { width, height, data: new Uint8Array(width * height) };
  for (let i = 0; i < width * height; i++) mask.data[i] = i % width < 11 ? 1 : 0;
  const pair = await drawPair(frame, mask, stillView(frame, carried, 2), 2, 1);
  assert.equal(pair.samples.ys.length, SEQUENCE_HEAD_PAIR_SAMPLES);
  const ones = pair.samples.ys.filter((y) => y === 1).length / pair.samples.ys.length;
  // Class 1 covers 11/40 of the frame (0.275) but 6/9 of the band: about half and half gives near 0.47.
  const expected = (1 - SEQUENCE_HEAD_BAND_SHARE) * (11 / 40) + SEQUENCE_HEAD_BAND_SHARE * (6 / 9);
  assert.ok(Math.abs(ones - expected) < 0.03, `class 1 drawn ${ones.toFixed(3)}, expected ${expected.toFixed(3)}`);
});

test("a carried view's planes: the colour residual, the round trip's miss, the motion and the averaged probabilities", () => {
  const W = 40;
  const H = 30;
  // The neighbour is the frame moved 3 pixels left: each pixel of the frame is found 3 pixels to its left.
  const frame = texturedFrame(W, H, 12, 8, 10);
  const neighbour = texturedFrame(W, H, 9, 8, 10);
  const backward = new Float32Array(W * H * 2);
  const forward = new Float32Array(W * H * 2);
  for (let i = 0; i < W * H; i++) {
    backward[2 * i] = -3;
    forward[2 * i] = 3;
  }
  const carried = new Float32Array(W * H * 2);
  for (let i = 0; i < W * H; i++) carried[2 * i + (i % W < 20 ? 1 : 0)] = 1;
  const planes = carriedPlanes(frame, neighbour, backward, forward, carried, 2);
  assert.equal(planes.length, CARRIED_PLANES + 2);
  const [residual, averaged, miss, motion, p0, p1] = planes;
  for (let y = 0; y < H; y++)
    for (let x = 3; x < W; x++) {
      const i = y * W + x;
      // Where the flow is right the colours match, and going there and back returns to the start.
      assert.ok(residual[i] < 1e-6, `residual ${residual[i]} at ${x},${y}`);
      assert.ok(Math.abs(miss[i]) < 1e-6);
      assert.ok(Math.abs(motion[i] - Math.log1p(3)) < 1e-6);
    }
  const box = (src: Float32Array) =>
    boxMean(src, W, H, CARRIED_BOX_RADIUS, new Float32Array(W * H), new Float32Array(W * H));
  assert.deepEqual(averaged, box(residual));
  // The averaged probabilities: 1 or 0 away from the carried edge (columns 19 | 20), in between beside it.
  assert.ok(Math.abs(p1[5 * W + 10] - 1) < 1e-6 && Math.abs(p0[5 * W + 10]) < 1e-6);
  assert.ok(Math.abs(p1[5 * W + 19] - 3 / 5) < 1e-6, `${p1[5 * W + 19]}`);
  // A flow that is wrong (zero, where the frame moved): the colours differ, and the round trip misses.
  const zero = new Float32Array(W * H * 2);
  const [wrong, , missed] = carriedPlanes(frame, neighbour, zero, forward, carried, 2);
  const mean = (a: Float32Array) => a.reduce((x, y) => x + y, 0) / a.length;
  assert.ok(mean(wrong) > 0.5, `residual ${mean(wrong)}`);
  assert.ok(Math.abs(mean(missed) - Math.log1p(3)) < 1e-6);
});

test('a carried view takes the frame beyond as a second observation: the geometric mean of the two, normalised', async () => {
  const { frames, masks } = jumpingSquare(3);
  const at = (i: number) => ({ image: frames[i], mask: masks[i] });
  const one = await carriedView(frames[2], at(1), 2);
  const other = await carriedView(frames[2], at(0), 2);
  const both = await carriedView(frames[2], at(1), 2, at(0));
  assert.deepEqual(both.probabilities, geometricMean(one.probabilities, other.probabilities, 2));
  // The planes are those of the nearer frame alone.
  assert.deepEqual(both.planes, one.planes);
  for (let i = 0; i < both.probabilities.length; i += 2) {
    const [a, b] = [both.probabilities[i], both.probabilities[i + 1]];
    assert.ok(Math.abs(a + b - 1) < 1e-5);
    const expected = Math.sqrt(Math.max(1e-6, one.probabilities[i]) * Math.max(1e-6, other.probabilities[i]));
    const rest = Math.sqrt(Math.max(1e-6, one.probabilities[i + 1]) * Math.max(1e-6, other.probabilities[i + 1]));
    assert.ok(Math.abs(a - expected / (expected + rest)) < 1e-5);
  }
  // A frame beyond of another size is no observation.
  const small = { image: texturedFrame(40, 30, 0, 0, 4), mask: rectMask(40, 30, 0, 0, 4, 4) };
  assert.deepEqual(await carriedView(frames[2], at(1), 2, small), one);
  // The head reads the filter features, the planes and the classes' log-probabilities.
  const pair = await drawPair(frames[2], masks[2], both, 2);
  assert.equal(pair.samples.xs[0].length, PIXEL_FEATURE_COUNT + CARRIED_PLANES + 2 + 2);
});

test('flows between the same two images are computed once and kept, by their contents', async () => {
  const W = 48;
  const H = 36;
  const a = texturedFrame(W, H, 10, 10, 8);
  const b = texturedFrame(W, H, 12, 11, 8);
  forgetFlows();
  const before = flowsComputedSoFar();
  const ab = await denseFlow(a, b);
  assert.equal(flowsComputedSoFar(), before + 1);
  // The same contents in other objects: found kept.
  const again = await denseFlow({ ...a, data: a.data.slice() }, { ...b, data: b.data.slice() });
  assert.equal(again, ab);
  assert.equal(flowsComputedSoFar(), before + 1);
  // The other way, another pair, or another size limit: computed.
  await denseFlow(b, a);
  await denseFlow(a, b, 24);
  const changed = { ...b, data: b.data.slice() };
  changed.data[0] ^= 1;
  await denseFlow(a, changed);
  assert.equal(flowsComputedSoFar(), before + 4);
  forgetFlows();
  const fresh = await denseFlow(a, b);
  assert.notEqual(fresh, ab);
  assert.deepEqual(fresh, ab);
  assert.equal(flowsComputedSoFar(), before + 5);
});

test('a head over a carried view runs the same through onnxruntime and in JS', async () => {
  const { frames, masks } = jumpingSquare(3);
  const view = await viewOf(frames, masks, 2);
  const head = await fitSequenceHead([await drawPair(frames[2], masks[2], view, 2)], 2);
  assert.ok(head);
  const features = async (image: RgbImage, y0: number, y1: number) => [
    ...(await pixelFeaturesFast(image, y0, y1)),
    ...view.planes.map((p) => p.subarray(y0 * image.width, y1 * image.width)),
  ];
  const native = await runPixelHead(head, frames[2], view.probabilities, features);
  setInferenceChoice('tfjs');
  try {
    const js = await runPixelHead(head, frames[2], view.probabilities, features);
    let diff = 0;
    for (let i = 0; i < js.length; i++) diff = Math.max(diff, Math.abs(js[i] - native[i]));
    assert.ok(diff < 1e-3, `largest difference ${diff}`);
  } finally {
    setInferenceChoice('auto');
  }
});
