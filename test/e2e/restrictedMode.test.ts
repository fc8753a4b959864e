// Restricted mode in a real VS Code (code-server with workspace trust on, the folder not trusted): the mask
// editor opens and paints, but the model is neither loaded from the workspace nor trained, and it says so.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { writeSampleData } from '../../src/cli/demo';
import { samFixtureDecoder, samFixtureEncoder } from '../engine/samFixture';
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
  // Click segmentation: the user's settings name a tiny SAM-layout pair outside the workspace; the workspace's
  // settings name a "pair" inside it that is no model, which restricted mode must ignore.
  const models = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-e2e-restricted-sam-'));
  fs.writeFileSync(path.join(models, 'tiny.encoder.onnx'), samFixtureEncoder());
  fs.writeFileSync(path.join(models, 'tiny.decoder.onnx'), samFixtureDecoder());
  const userClickModel = path.join(models, 'tiny.encoder.onnx');
  fs.mkdirSync(path.join(ws, '.vscode'));
  fs.mkdirSync(path.join(ws, 'sam'));
  fs.writeFileSync(path.join(ws, 'sam', 'bad.encoder.onnx'), 'not a model');
  fs.writeFileSync(path.join(ws, 'sam', 'bad.decoder.onnx'), 'not a model');
  fs.writeFileSync(
    path.join(ws, '.vscode', 'settings.json'),
    JSON.stringify({ 'maskloop.clickModel': path.join(ws, 'sam', 'bad.encoder.onnx') }),
  );
  cs = new CodeServer(ws, path.join(ROOT, 'test-output', 'e2e'), false);
  const userSettings = path.join(cs.userDataDir, 'User', 'settings.json');
  const settings = JSON.parse(fs.readFileSync(userSettings, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(userSettings, JSON.stringify({ ...settings, 'maskloop.clickModel': userClickModel }, null, 2));
  cs.installExtension();
  await cs.start();
});

after(async () => {
  await cs?.stop();
});

test('restricted mode: the editor and click segmentation work, no model is loaded or trained, and the person is told why', async () => {
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

  // Click segmentation works here, with the user's model (the workspace's setting is not used).
  await frame.focus('canvas.view');
  await cs.page.keyboard.press('k');
  const clickState = async (): Promise<string | null> => {
    const st = await frame.getAttribute('#app', 'data-click');
    return st === 'ready' || st === 'error' || st === 'unavailable' ? st : null;
  };
  const ready = await waitFor('click segmentation', clickState, 120_000);
  assert.equal(ready, 'ready', `click segmentation: ${await frame.textContent('.click-info')}`);
  await frame.locator('canvas.view').click();
  await waitFor(
    'the candidates',
    async () => (await frame.getAttribute('#app', 'data-click-candidates')) === '3',
    60_000,
  );
  await cs.page.keyboard.press('Escape');
  await cs.runCommand('MaskLoop: Fine-tune Model on Corrected Masks');
  await cs.waitForNotification('Restricted mode', 30_000);
  assert.equal(fs.readFileSync(path.join(ws, '.maskloop', 'model', 'model.json'), 'utf8'), '{ "not": "a model" }');
  assert.equal(fs.existsSync(path.join(ws, '.maskloop', 'model', 'versions')), false, 'nothing was trained');
});
