import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pendingMessage } from '../../src/extension/editor/predictionProgress';

test('the pending suggestion says what the model process is doing: tiles, carrying saved pairs, learning from them', () => {
  assert.equal(pendingMessage({ type: 'tiles', done: 2, total: 9 }), 'The model is predicting… tile 2/9');
  assert.equal(
    pendingMessage(
      { type: 'prepare', message: 'carrying f_07.png onto f_08.png', done: 2, total: 7 },
      '/data/seq/f_10.png',
    ),
    'Following f_10.png: carrying f_07.png onto f_08.png (3/7)…',
  );
  assert.equal(
    pendingMessage({ type: 'prepare', message: 'learning from 8 saved frames', done: 0, total: 1 }),
    'Following the neighbouring frame: learning from 8 saved frames…',
  );
  const fineTune = { epoch: 1, epochs: 8, step: 1, steps: 10, loss: 1, etaSeconds: 5, phase: 'train' as const };
  assert.equal(pendingMessage({ type: 'fineTune', progress: fineTune }), null);
});
