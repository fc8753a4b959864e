import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EditHistory } from '../../src/extension/editor/editHistory';

test('a document is dirty exactly when the current edit is not the saved one', () => {
  const h = new EditHistory();
  assert.equal(h.dirty, false, 'a new document is clean');
  const a = h.push();
  assert.equal(h.dirty, true);
  h.markSaved();
  assert.equal(h.dirty, false, 'saved after edit a');
  const b = h.push();
  assert.equal(h.dirty, true);
  h.undone(b);
  assert.equal(h.dirty, false, 'undoing back to the saved edit makes it clean again');
  h.undone(a);
  assert.equal(h.dirty, true, 'undoing past the saved edit makes it dirty');
  h.redone(a);
  assert.equal(h.dirty, false);
  h.redone(b);
  assert.equal(h.dirty, true);
});

test('an edit made after an undo is new, even where the history branches back to a saved id', () => {
  const h = new EditHistory();
  const a = h.push();
  const b = h.push();
  h.markSaved();
  h.undone(b);
  const c = h.push();
  assert.notEqual(c.id, b.id, 'ids are never reused');
  assert.equal(c.previous, a.id);
  assert.equal(h.dirty, true, 'the branch differs from what was saved');
});
