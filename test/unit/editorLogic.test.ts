import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { reportBody, linePlot } from '../../src/extension/commands/modelReport';
import { isMaskFile, resolveMaskPath, suggestionPathFor } from '../../src/extension/editor/maskPath';
import { applyDiff, changedPixels, diffMasks, emptyBox, maskMatchesDiff } from '../../src/masks/maskDiff';
import { emptyMask, resizeMaskNearest, type MaskImage } from '../../src/masks/maskImage';
import { decodeMaskPng, encodeMaskPng, MODEL_VERSION_KEY, pngSize, pngText } from '../../src/io/maskIO';
import { colourRegion, fillPolygon, labelRegion, paintSegment, paintSelection } from '../../src/masks/rasterTools';
import {
  actualSizeViewport,
  fitViewport,
  imageToScreen,
  panBy,
  screenToImage,
  zoomAt,
} from '../../webview/src/viewport';
import { ClickSession, paintCandidate } from '../../webview/src/clickTool';
import { keyAction } from '../../webview/src/keymap';
import { suggestionText } from '../../webview/src/suggestionText';

function rows(m: MaskImage): string[] {
  const out: string[] = [];
  for (let y = 0; y < m.height; y++) out.push([...m.data.subarray(y * m.width, (y + 1) * m.width)].join(''));
  return out;
}

test('diff of two masks is the bounding box of the changes, and applies both ways', () => {
  const a = emptyMask(6, 5);
  const b = emptyMask(6, 5);
  b.data[1 * 6 + 2] = 3;
  b.data[3 * 6 + 4] = 1;
  const d = diffMasks(a, b)!;
  assert.deepEqual({ x: d.x, y: d.y, w: d.width, h: d.height }, { x: 2, y: 1, w: 3, h: 3 });
  assert.equal(changedPixels(d), 2);
  assert.ok(maskMatchesDiff(a, d, 'before'));
  applyDiff(a, d, 'after');
  assert.deepEqual(a.data, b.data);
  applyDiff(a, d, 'before');
  assert.deepEqual(a.data, emptyMask(6, 5).data);
  assert.equal(diffMasks(a, emptyMask(6, 5)), null);
  assert.throws(() => applyDiff(emptyMask(3, 3), d, 'after'), /does not fit/);
});

test('brush: a size-3 dot is a plus-free 3x3 disc; size 1 paints the pixel under the point; strokes have no gaps', () => {
  const m = emptyMask(7, 7);
  const box = emptyBox();
  paintSegment(m, { x: 3.5, y: 3.5 }, { x: 3.5, y: 3.5 }, 3, 1, box);
  assert.deepEqual(rows(m), ['0000000', '0000000', '0011100', '0011100', '0011100', '0000000', '0000000']);
  assert.deepEqual(box, { x0: 2, y0: 2, x1: 5, y1: 5 });
  const one = emptyMask(4, 4);
  paintSegment(one, { x: 2.9, y: 1.1 }, { x: 2.9, y: 1.1 }, 1, 2, emptyBox());
  assert.equal(one.data[1 * 4 + 2], 2);
  assert.equal([...one.data].filter((v) => v).length, 1);
  const line = emptyMask(50, 5);
  paintSegment(line, { x: 0.5, y: 2.5 }, { x: 49.5, y: 2.5 }, 1, 1, emptyBox());
  for (let x = 0; x < 50; x++) assert.equal(line.data[2 * 50 + x], 1, `x=${x}`);
});

test('polygon fill samples pixel centres (even-odd), clipped to the mask', () => {
  const m = emptyMask(6, 6);
  fillPolygon(
    m,
    [
      { x: 1, y: 1 },
      { x: 4, y: 1 },
      { x: 4, y: 4 },
      { x: 1, y: 4 },
    ],
    5,
    emptyBox(),
  );
  assert.deepEqual(rows(m), ['000000', '055500', '055500', '055500', '000000', '000000']);
  const clipped = emptyMask(4, 4);
  fillPolygon(
    clipped,
    [
      { x: -10, y: -10 },
      { x: 10, y: -10 },
      { x: 10, y: 10 },
      { x: -10, y: 10 },
    ],
    1,
    emptyBox(),
  );
  assert.ok(clipped.data.every((v) => v === 1));
});

test('magic wand and region selection are 4-connected and honour the tolerance', () => {
  // RGB 5x1: 10, 14, 40, 12, 11 (grey); seed at 0 with tolerance 5 takes 0 and 1 only (40 breaks the run).
  const px = new Uint8Array([10, 10, 10, 14, 14, 14, 40, 40, 40, 12, 12, 12, 11, 11, 11]);
  const sel = colourRegion(px, 3, 5, 1, { x: 0, y: 0 }, 5);
  assert.deepEqual([...sel.inside], [1, 1, 0, 0, 0]);
  assert.deepEqual(sel.box, { x0: 0, y0: 0, x1: 2, y1: 1 });
  // Bounded by a disc: on a uniform 9x9 image, radius 2 about the centre takes the 13 pixels with dx² + dy² <= 4.
  const flat = new Uint8Array(9 * 9 * 3).fill(50);
  const disc = colourRegion(flat, 3, 9, 9, { x: 4, y: 4 }, 0, 2);
  assert.equal(disc.count, 13);
  assert.deepEqual(disc.box, { x0: 2, y0: 2, x1: 7, y1: 7 });
  const labels: MaskImage = { width: 4, height: 3, data: new Uint8Array([1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0]) };
  const region = labelRegion(labels, { x: 0, y: 0 });
  assert.equal(region.count, 5, 'the pixels at x=3 are not connected to the seed');
  const m = emptyMask(4, 3);
  paintSelection(m, region, labels, emptyBox());
  assert.deepEqual(rows(m), ['1100', '0100', '1100']);
  assert.equal(labelRegion(labels, { x: -1, y: 0 }).count, 0);
});

test('nearest resize keeps labels exact', () => {
  const m: MaskImage = { width: 2, height: 2, data: new Uint8Array([1, 2, 3, 255]) };
  assert.deepEqual(rows(resizeMaskNearest(m, 4, 4)), ['1122', '1122', '33255255', '33255255']);
});

test('viewport: zoom keeps the point under the cursor, pan is exact, fit and 1:1', () => {
  const v = { scale: 2, offsetX: 10, offsetY: 20 };
  const p = screenToImage(v, 110, 220);
  const z = zoomAt(v, 3, 110, 220);
  assert.deepEqual(screenToImage(z, 110, 220), p);
  assert.deepEqual(imageToScreen(v, p.x, p.y), { x: 110, y: 220 });
  assert.deepEqual(panBy(v, 5, -7), { scale: 2, offsetX: 15, offsetY: 13 });
  const f = fitViewport(200, 100, 800, 600);
  assert.equal(f.scale, 4);
  assert.deepEqual([f.offsetX, f.offsetY], [0, 100]);
  assert.equal(fitViewport(2000, 1000, 800, 600, false).scale, 0.4);
  assert.deepEqual(actualSizeViewport(100, 50, 800, 600), { scale: 1, offsetX: 350, offsetY: 275 });
});

test('mask paths: template variables, refusal to overwrite the image, mask files are not images', () => {
  const ws = path.resolve('/data/ws');
  const img = path.join(ws, 'a', 'cell 1.tif');
  assert.equal(resolveMaskPath('${dir}/${stem}.mask.png', img, ws), path.join(ws, 'a', 'cell 1.mask.png'));
  assert.equal(
    resolveMaskPath('${workspaceFolder}/masks/${relDir}/${stem}.png', img, ws),
    path.join(ws, 'masks', 'a', 'cell 1.png'),
  );
  assert.throws(() => resolveMaskPath('${dir}/${stem}.png', path.join(ws, 'x.png'), ws), /overwrite the image/);
  assert.throws(() => resolveMaskPath('${dir}/${stem}.jpg', img, ws), /\.png/);
  assert.throws(() => resolveMaskPath('${nope}/${stem}.png', img, ws), /unknown variable/);
  assert.ok(isMaskFile('/x/a.mask.png'));
  assert.ok(isMaskFile('/x/a.suggestion.png'));
  assert.ok(!isMaskFile('/x/a.png'));
  assert.ok(isMaskFile('/data/ws/masks/a.png', '${workspaceFolder}/masks/${stem}.png'));
  assert.equal(suggestionPathFor('/x/a.mask.png'), '/x/a.suggestion.png');
});

test('model report: plots every version, marks the current one', () => {
  const svg = linePlot(
    't',
    'x',
    [
      {
        name: 'a',
        colour: '#000',
        points: [
          { x: 1, y: 0.5 },
          { x: 2, y: 0.75 },
        ],
      },
    ],
    1,
  );
  assert.match(svg, /<svg[^>]*>/);
  assert.equal((svg.match(/<circle/g) ?? []).length, 2);
  const body = reportBody(2, [
    {
      version: 1,
      parent: null,
      createdAt: '2026-01-01',
      backend: 'wasm',
      accepted: true,
      reason: 'first',
      metricsAfter: { miou: 0.5, boundaryIoU: 0.3, boundaryF: 0.4 },
      history: [
        { epoch: 1, loss: 1 },
        { epoch: 2, loss: 0.5 },
      ],
    },
    {
      version: 2,
      parent: 1,
      createdAt: '2026-01-02',
      backend: 'wasm',
      accepted: true,
      reason: 'better',
      metricsBefore: { miou: 0.5, boundaryIoU: 0.3 },
      metricsAfter: { miou: 0.7, boundaryIoU: 0.6, boundaryF: 0.65 },
      history: [{ epoch: 1, loss: 0.4 }],
    },
  ]);
  assert.match(body, /2 \(current\)/);
  assert.match(body, /0\.500 → 0\.700/);
  assert.match(reportBody(null, []), /No model versions yet/);
});

test('a pre-label suggestion file records its model version in a tEXt chunk and stays a plain index PNG', () => {
  const m: MaskImage = { width: 3, height: 2, data: new Uint8Array([0, 1, 2, 3, 255, 0]) };
  const bytes = encodeMaskPng(m, { [MODEL_VERSION_KEY]: '7' });
  assert.equal(pngText(bytes)[MODEL_VERSION_KEY], '7');
  assert.deepEqual(decodeMaskPng(bytes, 'a.suggestion.png').data, m.data);
  assert.deepEqual(pngText(encodeMaskPng(m)), {});
  assert.deepEqual(pngText(new Uint8Array([1, 2, 3])), {});
});

test("a PNG's size comes from its header alone (the fine-tune command checks masks against images with it)", () => {
  const bytes = encodeMaskPng({ width: 300, height: 7, data: new Uint8Array(2100) });
  assert.deepEqual(pngSize(bytes.subarray(0, 24)), { width: 300, height: 7 });
  assert.equal(pngSize(new Uint8Array(24)), null);
  assert.equal(pngSize(bytes.subarray(0, 10)), null);
});

test('editor keys: tools, classes, layers, zoom; Enter and Backspace only while they mean something', () => {
  assert.deepEqual(keyAction('B', 'wand', false), { kind: 'tool', tool: 'brush' });
  assert.deepEqual(keyAction('3', 'brush', false), { kind: 'class', nth: 3 });
  assert.equal(keyAction('0', 'brush', false), null);
  assert.deepEqual(keyAction('c', 'brush', false), { kind: 'toggle', layer: 'showConfidence' });
  assert.deepEqual(keyAction('a', 'brush', false), { kind: 'accept' });
  assert.deepEqual(keyAction('=', 'brush', false), { kind: 'zoom', factor: 1.25 });
  assert.deepEqual(keyAction(']', 'brush', false), { kind: 'brushSize', grow: true });
  assert.deepEqual(keyAction('Enter', 'polygon', true), { kind: 'closePolygon' });
  assert.equal(keyAction('Enter', 'brush', false), null, "Enter outside the polygon tool is VS Code's");
  assert.deepEqual(keyAction('Backspace', 'polygon', true), { kind: 'dropVertex' });
  assert.equal(keyAction('Backspace', 'polygon', false), null);
  assert.equal(keyAction('ArrowRight', 'brush', false), null);
});

test("the info bar names a suggestion's source: the model, the frame it follows, the pre-label file", () => {
  const ready = { state: 'ready' as const, classMap: new Uint8Array(1), confidence: new Uint8Array(1) };
  assert.equal(suggestionText({ ...ready, modelVersion: 7, trained: true }, false), 'Suggested by model version 7');
  assert.equal(
    suggestionText({ ...ready, modelVersion: 1, trained: false }, false),
    'Suggested by model version 1 (untrained)',
  );
  assert.equal(
    suggestionText({ ...ready, modelVersion: 4, trained: true, follows: 'f11.png' }, false),
    'Following f11.png, refined by model version 4',
  );
  assert.equal(
    suggestionText({ ...ready, modelVersion: 0, trained: false, follows: 'f11.png' }, false),
    'Following f11.png (no model yet)',
  );
  assert.equal(
    suggestionText({ ...ready, modelVersion: 4, trained: true, follows: 'f11.png', learnedPairs: 7 }, false),
    'Following f11.png, as 8 saved frames taught, refined by model version 4',
  );
  assert.equal(
    suggestionText({ ...ready, modelVersion: 0, trained: false, follows: 'f11.png', learnedPairs: 2 }, false),
    'Following f11.png, as 3 saved frames taught (no model yet)',
  );
  assert.equal(
    suggestionText({ ...ready, modelVersion: 4, trained: true, follows: 'f11.png', refining: true }, false),
    'Following f11.png, refined by model version 4; improving it from the saved frames before it…',
  );
  assert.equal(
    suggestionText({ ...ready, modelVersion: 2, trained: true, confidence: null, file: 'a.suggestion.png' }, true),
    'Suggested by model version 2 (pre-labelled: a.suggestion.png); no confidence for a pre-labelled suggestion',
  );
  assert.equal(suggestionText({ state: 'error', message: 'boom' }, false), 'Suggestion failed: boom');
});

test('click tool keys: K picks it; Enter and A paint the shown candidate, Tab shows the next; otherwise as before', () => {
  assert.deepEqual(keyAction('k', 'brush', false), { kind: 'tool', tool: 'click' });
  assert.deepEqual(keyAction('Enter', 'click', false, true), { kind: 'acceptClick' });
  assert.deepEqual(keyAction('a', 'click', false, true), { kind: 'acceptClick' });
  assert.deepEqual(keyAction('Tab', 'click', false, true), { kind: 'nextCandidate' });
  assert.deepEqual(
    keyAction('a', 'click', false, false),
    { kind: 'accept' },
    'nothing shown: A accepts the suggestion',
  );
  assert.equal(keyAction('Enter', 'click', false, false), null);
  assert.equal(keyAction('Tab', 'brush', false, true), null, 'Tab is left to VS Code outside the click tool');
});

test('a click session numbers its prompts, keeps only the latest answer, and paints the chosen candidate', () => {
  const s = new ClickSession();
  assert.equal(s.active, false);
  s.addPoint({ x: 3, y: 4, positive: true }, true);
  s.addPoint({ x: 5, y: 6, positive: false }, false);
  assert.equal(s.refine, true, 'refining is decided by the first click');
  const first = s.prompt(2);
  s.setBox({ x: 9, y: 1 }, { x: 2, y: 7 });
  const second = s.prompt(2);
  assert.deepEqual([first.seq, second.seq], [1, 2]);
  assert.deepEqual(second.box, { x0: 2, y0: 1, x1: 9, y1: 7 });
  const cand = (v: number) => ({ mask: Uint8Array.of(v, 1, 0, 0), score: 0.5, area: 1 });
  assert.equal(s.result(1, [cand(0)]), false, 'an older answer is dropped');
  assert.equal(s.result(2, [cand(0), cand(1)], 7, true), true);
  assert.match(s.describe(), /candidate 1 of 2 \(the model's suggested region\)/);
  s.nextCandidate();
  assert.equal(s.chosen, 1);
  assert.match(s.describe(), /candidate 2 of 2 \(predicted IoU 0\.50\)/, "the click model's own answer");
  s.nextCandidate();
  assert.equal(s.chosen, 0, 'Tab wraps around');
  const mask = { width: 2, height: 2, data: Uint8Array.of(0, 3, 0, 0) };
  const box = emptyBox();
  paintCandidate(mask, Uint8Array.of(1, 1, 0, 1), 3, box);
  assert.deepEqual(Array.from(mask.data), [3, 3, 0, 3]);
  assert.deepEqual(box, { x0: 0, y0: 0, x1: 2, y1: 2 });
  s.clear();
  assert.equal(s.result(2, [cand(1)]), false, 'after Esc, a late answer is not shown');
});
