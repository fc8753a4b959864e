import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkMaskClasses, classListFromMasks, parseClassList, vocColor } from '../../src/masks/classList';
import { InputError } from '../../src/masks/inputError';

test('labels.txt convention: __ignore__ takes no index, _background_ is 0', () => {
  const list = parseClassList('__ignore__\n_background_\ncat #FF8800\n\ndog\n# comment\n', 'labels.txt');
  assert.deepEqual(
    list.classes.map((c) => [c.index, c.name]),
    [
      [0, '_background_'],
      [1, 'cat'],
      [2, 'dog'],
    ],
  );
  assert.equal(list.classes[1].color, '#ff8800');
  assert.equal(list.classes[2].color, vocColor(2));
});

test('VOC colour map matches the published values', () => {
  assert.equal(vocColor(0), '#000000');
  assert.equal(vocColor(1), '#800000');
  assert.equal(vocColor(2), '#008000');
  assert.equal(vocColor(15), '#c08080');
});

test('bad class lists are errors naming the file', () => {
  assert.throws(
    () => parseClassList('cat\ndog\n', 'l.txt'),
    (e: Error) => e instanceof InputError && e.message.startsWith('l.txt:') && /_background_/.test(e.message),
  );
  assert.throws(() => parseClassList('_background_\ncat\ncat\n', 'l.txt'), /listed twice/);
  assert.throws(() => parseClassList('_background_\n', 'l.txt'), /at least one class/);
});

test('a mask index outside the list names the file and the pixel', () => {
  const list = parseClassList('_background_\ncat\n', 'l.txt');
  const mask = { width: 3, height: 1, data: new Uint8Array([0, 255, 2]) };
  assert.throws(() => checkMaskClasses(mask, list, 'a.png'), /^InputError: a\.png: pixel 2,0 has class 2/);
  checkMaskClasses({ width: 2, height: 1, data: new Uint8Array([1, 255]) }, list, 'b.png');
});

test('absent a list, the classes are the indices seen', () => {
  const list = classListFromMasks([
    { width: 2, height: 1, data: new Uint8Array([0, 3]) },
    { width: 1, height: 1, data: new Uint8Array([255]) },
  ]);
  assert.equal(list.classes.length, 4);
});
