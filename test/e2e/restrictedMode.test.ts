// Restricted mode in a real VS Code (code-server with workspace trust on, the folder not trusted): the mask
// editor opens and paints, but the model is neither loaded from the workspace nor trained, and it says so.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { writeSampleData } from '../../src/cli/demo';
import { checkPrerequisites, CodeServer, ROOT, waitFor } from './codeServerHarness';

let cs: CodeServer;
let ws: string;

before(async () => {
  checkPrerequisites();
  const gen = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-e2e-restricted-data-'));
  const { images } = await writeSampleData(gen, 1, 64, 3);
  ws = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-e2e-restricted-ws-'));
  fs.copyFileSync(images[0], path.join(ws, 'untrusted.png'));
  // A model folder that must not be loaded: a file in its place would fail loudly if anything read it.
  fs.mkdirSync(path.join(ws, '.maskloop', 'model'), { recursive: true });
  fs.writeFileSync(path.join(ws, '.maskloop', 'model', 'model.json'), '{ "not": "a model" }');
  cs = new CodeServer(ws, path.join(ROOT, 'test-output', 'e2e'), false);
  cs.installExtension();
  await cs.start();
});

after(async () => {
  await cs?.stop();
});

test('restricted mode: the editor works, no model is loaded or trained, and the person is told why', async () => {
  // Decline trust when the workbench asks (the dialog may come as a modal or not at all in some builds).
  const decline = cs.page
    .locator('.monaco-dialog-box .monaco-button', { hasText: /Don't Trust|No, I don't trust/ })
    .first();
  await decline.click({ timeout: 30_000 }).catch(() => undefined);
  const frame = await cs.openWithMaskEditorCommand('untrusted.png', (timeout) =>
    cs.editorFrame('untrusted.png', timeout),
  );
  await waitFor(
    'the restricted-mode notice',
    async () => /Restricted mode/.test((await frame.textContent('.suggestion-info')) ?? ''),
    30_000,
  );
  assert.equal(await frame.getAttribute('#app', 'data-suggestion'), 'none');
  await cs.screenshot('08-restricted-mode');
  await cs.runCommand('MaskLoop: Fine-tune Model on Corrected Masks');
  await waitFor(
    'the refusal',
    () =>
      cs.page
        .locator('.notification-list-item-message', { hasText: 'Restricted mode' })
        .first()
        .isVisible()
        .catch(() => false),
    30_000,
  );
  assert.equal(fs.readFileSync(path.join(ws, '.maskloop', 'model', 'model.json'), 'utf8'), '{ "not": "a model" }');
  assert.equal(fs.existsSync(path.join(ws, '.maskloop', 'model', 'versions')), false, 'nothing was trained');
});
