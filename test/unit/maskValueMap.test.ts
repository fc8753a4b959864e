import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyValueMap, checkMaskUsable, parseValueMap } from '../../src/masks/maskValueMap';

const m = (values: number[]) => ({ width: values.length, height: 1, data: Uint8Array.from(values) });

test('a value map renumbers a 0/255 mask; values it lacks are errors naming the file, pixel and fix', () => {
  const map = parseValueMap('0=1, 255=0');
  assert.deepEqual(Array.from(applyValueMap(m([0, 255, 255, 0]), map, 'a.png').data), [1, 0, 0, 1]);
  assert.deepEqual(Array.from(applyValueMap(m([7]), parseValueMap('7=ignore'), 'a.png').data), [255]);
  assert.throws(
    () => applyValueMap(m([0, 128]), map, 'a.png'),
    /^InputError: a\.png: pixel 1,0 has value 128, which --map does not list; add it \(128=CLASS, or 128=ignore\)/,
  );
  assert.throws(() => parseValueMap('0=1,0=2'), /value 0 is mapped twice/);
  assert.throws(() => parseValueMap('0:1'), /"0:1" is not VALUE=CLASS/);
  assert.throws(() => parseValueMap('300=1'), /"300=1" is not VALUE=CLASS with both 0-255/);
});

test('a mask of only 0 and 255, or only 255, is refused with the import command; others pass', () => {
  assert.throws(
    () => checkMaskUsable(m([0, 255, 0]), 'em.png'),
    /em\.png: the mask holds only 0 and 255.*maskloop import --from masks MASKS_DIR --to NEW_DIR --map 0=0,255=1/,
  );
  assert.throws(() => checkMaskUsable(m([255, 255]), 'em.png'), /em\.png: every pixel is 255/);
  checkMaskUsable(m([0, 0]), 'bg.png');
  checkMaskUsable(m([0, 1, 255]), 'ok.png');
});
