import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trainingCheck } from '../../src/engine/training/trainingCheck';
import type { MaskImage } from '../../src/masks/maskImage';

function mask(rows: string[]): MaskImage {
  const data = Uint8Array.from(rows.join('').split(''), (c) => (c === 'x' ? 255 : Number(c)));
  return { width: rows[0].length, height: rows.length, data };
}

const truth = mask(['0000', '0110', '0110', '000x']);

test('a version that suggests nothing where its training masks hold objects learned nothing, and says why', () => {
  const fit = trainingCheck([{ truth, suggestion: mask(['0000', '0000', '0000', '0000']) }], {
    loss: { first: 2.5, last: 2.4 },
  });
  assert.equal(fit.learnedNothing, true);
  assert.equal(fit.objectRecall, 0);
  // 4 object pixels of 15 labelled: the empty suggestion's cost, and this suggestion's.
  assert.ok(Math.abs(fit.emptyFraction - 4 / 15) < 1e-12);
  assert.ok(Math.abs(fit.changedFraction - 4 / 15) < 1e-12);
  assert.match(
    fit.reason,
    /^learned nothing: on its 1 training image\(s\) its suggestions need 26\.7% of pixels changed \(an empty suggestion: 26\.7%\) and find 0\.0% of the object pixels/,
  );
  assert.match(fit.reason, /training loss hardly fell \(2\.500 -> 2\.400\)/);
  assert.match(fit.reason, /--force/);
});

test('painting everything as object finds every object and still learned nothing: it saves no work', () => {
  const fit = trainingCheck([{ truth, suggestion: mask(['1111', '1111', '1111', '1111']) }]);
  assert.equal(fit.objectRecall, 1);
  assert.ok(Math.abs(fit.changedFraction - 11 / 15) < 1e-12);
  assert.equal(fit.learnedNothing, true);
  assert.doesNotMatch(fit.reason, /loss/, 'no loss, no claim about it');
  assert.doesNotMatch(fit.reason, /quick fine-tune/);
  assert.match(
    trainingCheck([{ truth, suggestion: mask(['1111', '1111', '1111', '1111']) }], { contextOnly: true }).reason,
    /quick fine-tune fits only a linear read-out.*run the full fine-tune/,
  );
  assert.match(
    trainingCheck([{ truth, suggestion: mask(['1111', '1111', '1111', '1111']) }], {
      contextOnly: true,
      pixelHead: true,
    }).reason,
    /quick fine-tune fits only a linear read-out of 8-pixel cells and the pixel head, not the decoder: run the full fine-tune/,
  );
});

test('a version that reproduces its training masks up to an edge pixel passes; masks without objects pass', () => {
  const fit = trainingCheck([{ truth, suggestion: mask(['0000', '0110', '0100', '0000']) }], {
    loss: { first: 2, last: 0.5 },
  });
  assert.equal(fit.learnedNothing, false);
  assert.ok(Math.abs(fit.objectRecall - 3 / 4) < 1e-12);
  const background = mask(['0000', '0000']);
  assert.equal(trainingCheck([{ truth: background, suggestion: background }]).learnedNothing, false);
  assert.equal(trainingCheck([]).learnedNothing, false);
});
