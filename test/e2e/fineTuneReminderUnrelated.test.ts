// The reminder to fine-tune on a folder of unrelated images, in a real VS Code: with
// `maskloop.followNeighbours` off the early fine-tune at 2 corrected masks is not asked for (on unrelated images
// it made the next suggestions worse: engine/training/fineTuneRule.ts); the 4th corrected mask asks.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { writeSampleData } from '../../src/cli/demo';
import {
  checkPrerequisites,
  CodeServer,
  correctAndSave as correctAndSaveIn,
  fineTuneReminderToast,
  ROOT,
  waitFor,
} from './codeServerHarness';

let cs: CodeServer;
let ws: string;

before(async () => {
  checkPrerequisites();
  const gen = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-e2e-remind4-data-'));
  const { images } = await writeSampleData(gen, 4, 64, 7);
  ws = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-e2e-remind4-ws-'));
  images.forEach((f, i) => fs.copyFileSync(f, path.join(ws, `photo_${i + 1}.png`)));
  fs.copyFileSync(path.join(gen, 'classes.txt'), path.join(ws, 'classes.txt'));
  fs.mkdirSync(path.join(ws, '.vscode'));
  fs.writeFileSync(
    path.join(ws, '.vscode', 'settings.json'),
    JSON.stringify({ 'maskloop.followNeighbours': false, 'maskloop.backend': 'wasm' }),
  );
  cs = new CodeServer(ws, path.join(ROOT, 'test-output', 'e2e'));
  cs.installExtension();
  await cs.start();
});

after(async () => {
  await cs?.stop();
});

const reminder = () => fineTuneReminderToast(cs);
const correctAndSave = (name: string) => correctAndSaveIn(cs, ws, name);

test('unrelated images (following off): no reminder at the 2nd corrected mask, one at the 4th', async () => {
  await correctAndSave('photo_1.png');
  await correctAndSave('photo_2.png');
  await cs.page.waitForTimeout(3_000);
  assert.equal(await reminder().isVisible(), false, 'two masks of unrelated images: no reminder');
  await correctAndSave('photo_3.png');
  await cs.page.waitForTimeout(3_000);
  assert.equal(await reminder().isVisible(), false, 'three masks: no reminder');
  await correctAndSave('photo_4.png');
  await waitFor(
    'the reminder',
    () =>
      reminder()
        .isVisible()
        .catch(() => false),
    30_000,
  );
  assert.match((await reminder().textContent()) ?? '', /4 corrected masks/);
  await reminder().locator('.monaco-button', { hasText: 'Not Now' }).click();
  await cs.page.waitForTimeout(2_000);
  assert.equal(fs.existsSync(path.join(ws, '.maskloop', 'model', 'versions')), false, '"Not Now" trains nothing');
});
