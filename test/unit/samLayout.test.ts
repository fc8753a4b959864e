import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  candidateMasks,
  edgeThreshold,
  encoderInput,
  inputScale,
  maskPromptArray,
  promptArrays,
  resizeRgbPlanes,
} from '../../src/engine/click/samGeometry';
import { samLayout, type GraphIo } from '../../src/engine/click/samLayout';

const v = (name: string, shape: (number | string)[] = []) => ({ name, shape });
const prompts = [
  v('point_coords', [1, 'n', 2]),
  v('point_labels', [1, 'n']),
  v('mask_input', [1, 1, 256, 256]),
  v('has_mask_input', [1]),
];
const samEncoder: GraphIo = {
  inputs: [v('input_image', [1, 3, 1024, 1024])],
  outputs: [v('image_embeddings', [1, 256, 64, 64])],
};
const samDecoder: GraphIo = {
  inputs: [v('image_embeddings', [1, 256, 64, 64]), ...prompts, v('orig_im_size', [2])],
  outputs: [v('masks'), v('iou_predictions'), v('low_res_masks')],
};
const sam2Encoder: GraphIo = {
  inputs: [v('image', [1, 3, 1024, 1024])],
  outputs: [v('high_res_feats_0'), v('high_res_feats_1'), v('image_embed')],
};
const sam2Decoder: GraphIo = {
  inputs: [v('image_embed'), v('high_res_feats_0'), v('high_res_feats_1'), ...prompts],
  outputs: [v('masks'), v('iou_predictions')],
};

test('SAM, SAM with its own preprocessing, and SAM 2 layouts are told apart', () => {
  const sam = samLayout(samEncoder, samDecoder);
  assert.ok(!('error' in sam));
  assert.equal(sam.kind, 'sam');
  assert.equal(sam.preprocess, 'padded');
  assert.deepEqual(sam.embeddings, ['image_embeddings']);
  assert.deepEqual(sam.feeds, { image_embeddings: 'image_embeddings' });
  // The embedding reaches the decoder whatever the two are called (labelme's encoder names its input x).
  const renamed = samLayout(
    { inputs: [v('x', [1, 3, 1024, 1024])], outputs: [v('output')] },
    { ...samDecoder, inputs: [v('embedding'), ...samDecoder.inputs.slice(1)] },
  );
  assert.ok(!('error' in renamed) && renamed.feeds.embedding === 'output' && renamed.encoderInput === 'x');
  assert.deepEqual(sam.promptInputs, ['point_coords', 'point_labels', 'mask_input', 'has_mask_input', 'orig_im_size']);
  assert.equal(sam.maskInputSize, 256);
  assert.equal(sam.lowResMasks, 'low_res_masks');
  const raw = samLayout({ ...samEncoder, inputs: [v('input_image', ['h', 'w', 3])] }, samDecoder);
  assert.ok(!('error' in raw) && raw.preprocess === 'raw' && raw.inputSize === 1024);
  const sam2 = samLayout(sam2Encoder, sam2Decoder);
  assert.ok(!('error' in sam2));
  assert.equal(sam2.kind, 'sam2');
  assert.equal(sam2.preprocess, 'stretched');
  assert.deepEqual(sam2.embeddings, ['image_embed', 'high_res_feats_0', 'high_res_feats_1']);
  assert.equal(sam2.lowResMasks, null);
});

test('other layouts are refused, each with its reason', () => {
  const error = (e: GraphIo, d: GraphIo): string => {
    const r = samLayout(e, d);
    assert.ok('error' in r, 'refused');
    return r.error;
  };
  assert.match(error({ ...samEncoder, inputs: [...samEncoder.inputs, v('x')] }, samDecoder), /takes 2 inputs/);
  assert.match(
    error(samEncoder, { ...samDecoder, inputs: [...samDecoder.inputs, v('text_tokens')] }),
    /takes image_embeddings, text_tokens besides its prompt inputs/,
  );
  assert.match(
    error(sam2Encoder, { ...sam2Decoder, inputs: [...sam2Decoder.inputs, v('text_tokens')] }),
    /takes text_tokens, which is neither/,
  );
  assert.match(
    error(samEncoder, { ...samDecoder, inputs: samDecoder.inputs.filter((i) => i.name !== 'point_labels') }),
    /no point_labels/,
  );
  assert.match(error(samEncoder, { ...samDecoder, outputs: [v('masks')] }), /no masks and iou_predictions/);
  assert.match(
    error(sam2Encoder, { ...sam2Decoder, inputs: sam2Decoder.inputs.filter((i) => i.name !== 'high_res_feats_1') }),
    /does not take the encoder's high_res_feats_1/,
  );
  assert.match(error({ ...samEncoder, inputs: [v('input_image', [1, 3, 1024, 768])] }, samDecoder), /not square/);
  const all = error({ inputs: [v('a'), v('b')], outputs: [] }, samDecoder);
  assert.match(all, /The encoder has inputs a, b; outputs none/, 'the message lists what was found');
});

test('the image reaches the encoder resized as SAM resizes it: longest side, padded; or stretched', () => {
  const image = { width: 200, height: 100, data: new Uint8Array(200 * 100 * 3).fill(123) };
  assert.deepEqual(inputScale({ preprocess: 'padded', inputSize: 64 }, 200, 100), { sx: 0.32, sy: 0.32 });
  assert.deepEqual(inputScale({ preprocess: 'stretched', inputSize: 64 }, 200, 100), { sx: 0.32, sy: 0.64 });
  const padded = encoderInput(image, { preprocess: 'padded', inputSize: 64 });
  assert.deepEqual(padded.dims, [1, 3, 64, 64]);
  // Inside: (123 - mean) / std; the padding below row 32 stays 0.
  assert.ok(Math.abs(padded.data[0] - (123 - 123.675) / 58.395) < 1e-4);
  assert.equal(padded.data[40 * 64 + 10], 0);
  const raw = encoderInput(image, { preprocess: 'raw', inputSize: 64 });
  assert.deepEqual(raw.dims, [32, 64, 3]);
  assert.ok(Math.abs(raw.data[0] - 123) < 1e-3);
  // A constant image stays constant, and a step is smoothed, not shifted, when shrinking.
  const step = { width: 8, height: 1, data: new Uint8Array(24) };
  step.data.fill(200, 12);
  const [r] = resizeRgbPlanes(step, 4, 1);
  assert.deepEqual(
    Array.from(r).map((x) => Math.round(x)),
    [0, 25, 175, 200],
  );
});

test('clicks and a box become SAM point prompts, with the padding point only without a box', () => {
  const layout = { preprocess: 'padded' as const, inputSize: 64 };
  const clicks = promptArrays(
    {
      points: [
        { x: 100, y: 50, positive: true },
        { x: 10, y: 5, positive: false },
      ],
    },
    layout,
    200,
    100,
  );
  assert.deepEqual(
    Array.from(clicks.coords),
    [32, 16, 3.2, 1.6, 0, 0].map((x) => Math.fround(x)),
  );
  assert.deepEqual(Array.from(clicks.labels), [1, 0, -1]);
  const box = promptArrays({ points: [], box: { x0: 150, y0: 80, x1: 50, y1: 20 } }, layout, 200, 100);
  assert.deepEqual(
    Array.from(box.coords),
    [16, 6.4, 48, 25.6].map((x) => Math.fround(x)),
    'corners ordered',
  );
  assert.deepEqual(Array.from(box.labels), [2, 3]);
});

test('low-resolution logits come back at the image size over the part of the grid the image covers', () => {
  // A 4x4 grid over a 64-pixel input; the 200x100 image fills its top half (padded SAM).
  const layout = { preprocess: 'padded' as const, inputSize: 64 };
  const logits = new Float32Array(2 * 16).fill(-1);
  logits[0] = 5; // candidate 0: the top-left cell
  for (let i = 16; i < 32; i++) logits[i] = 1; // candidate 1: everything
  const [best, second] = candidateMasks(logits, [1, 2, 4, 4], Float32Array.of(0.2, 0.8), layout, 200, 100);
  assert.equal(best.score, Math.fround(0.8));
  assert.equal(best.area, 200 * 100);
  // The top-left cell covers input pixels 0-16, image pixels 0-50 on each axis; bilinear blends its edge.
  assert.equal(second.mask[10 * 200 + 10], 1);
  assert.equal(second.mask[90 * 200 + 190], 0);
  assert.ok(second.area > 40 * 40 && second.area < 70 * 70, `area ${second.area}`);
  // A region as the mask prompt: +8 where it covers a cell, -8 where not.
  const region = { width: 200, height: 100, data: new Uint8Array(200 * 100) };
  for (let y = 0; y < 50; y++) region.data.fill(1, y * 200, y * 200 + 50);
  const prompt = maskPromptArray(region, { ...layout, maskInputSize: 4 });
  assert.equal(prompt[0], 8);
  assert.equal(prompt[1], -8);
  assert.equal(prompt[3 * 4 + 3], -8, 'padding cells: outside');
});

test("the edge threshold keeps the most clicks, SAM's own 0 first, then the nearest to it", () => {
  // Logits along x: 3 at x = 0 falling by 1 per pixel.
  const logitAt = (x: number): number => 3 - x;
  const click = (x: number, positive: boolean) => ({ x: x + 0.5, y: 0.5, positive });
  // Kept at 0 already.
  assert.equal(edgeThreshold(logitAt, [click(1, true), click(5, false)], 10, 1), 0);
  // A positive click at x = 4 (logit -1) needs the edge below -1: -2 is the first of the list past it.
  assert.equal(edgeThreshold(logitAt, [click(0, true), click(4, true)], 10, 1), -2);
  // A negative click at x = 2 (logit 1) needs it at 1 or above: 1 is.
  assert.equal(edgeThreshold(logitAt, [click(0, true), click(2, false)], 10, 1), 1);
  // Clicks that no threshold keeps together (a positive click at logit -2, a negative one at 2): the first of
  // the list that keeps one of them, 2 (-2 keeps neither: a pixel is inside above the threshold).
  assert.equal(edgeThreshold(logitAt, [click(5, true), click(1, false)], 10, 1), 2);
  // A click past the image's edge reads the border pixel (x = 8: logit -5).
  assert.equal(edgeThreshold(logitAt, [{ x: 12, y: 3, positive: true }], 9, 1), -6);
});

test('candidate masks drawn at the threshold the clicks choose, each candidate its own', () => {
  // Logits at the image's size (8x1): candidate 0 falls from 3.5 by 1 per pixel, candidate 1 is -8 everywhere.
  const layout = { preprocess: 'padded' as const, inputSize: 8 };
  const logits = new Float32Array(16).fill(-8);
  for (let x = 0; x < 8; x++) logits[x] = 3.5 - x;
  const points = [
    { x: 0.5, y: 0.5, positive: true },
    { x: 5.5, y: 0.5, positive: true },
  ];
  const [a, b] = candidateMasks(logits, [1, 2, 1, 8], Float32Array.of(0.9, 0.1), layout, 8, 1, points);
  // x = 5 has logit -1.5: -2 keeps it; the pixels above -2 are x = 0..5.
  assert.equal(a.threshold, -2);
  assert.deepEqual([...a.mask], [1, 1, 1, 1, 1, 1, 0, 0]);
  assert.equal(a.area, 6);
  // Candidate 1 keeps no click at any threshold of the list: SAM's own 0, empty.
  assert.equal(b.threshold, 0);
  assert.equal(b.area, 0);
  // Without clicks: 0, as the decoder draws it (x = 0..3).
  const [plain] = candidateMasks(logits, [1, 2, 1, 8], Float32Array.of(0.9, 0.1), layout, 8, 1);
  assert.equal(plain.threshold, 0);
  assert.deepEqual([...plain.mask], [1, 1, 1, 1, 0, 0, 0, 0]);
});

test("the threshold chosen at the clicks reads the logits as the mask is drawn: each click's pixel agrees", () => {
  // Random low-resolution logits (8x8 over a 32-pixel input) under a 50x30 image, and a click on a random
  // pixel: its logit is within -4..4 and the thresholds reach -6..6, so the mask must agree with it there.
  let seed = 7;
  const random = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
  const layout = { preprocess: 'padded' as const, inputSize: 32 };
  for (let round = 0; round < 40; round++) {
    const logits = Float32Array.from({ length: 64 }, () => random() * 8 - 4);
    const p = { x: Math.floor(random() * 50) + 0.5, y: Math.floor(random() * 30) + 0.5, positive: random() < 0.5 };
    const [c] = candidateMasks(logits, [1, 1, 8, 8], Float32Array.of(1), layout, 50, 30, [p]);
    assert.equal(c.mask[Math.floor(p.y) * 50 + Math.floor(p.x)], p.positive ? 1 : 0, `round ${round}`);
  }
});
