// The reminder to fine-tune on a folder of unrelated images, in a real VS Code: with
// `maskloop.followNeighbours` off the early fine-tune at 2 corrected masks is not asked for (on unrelated images
// it made the next suggestions worse: engine/training/fineTuneRule.ts); the 4th corrected mask asks.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import {
  checkPrerequisites,
  CodeServer,
  correctAndSave as correctAndSaveIn,
  fineTuneReminderToast,
  ROOT,
  sampleWorkspace,
  waitFor,
} from './codeServerHarness';

let cs: CodeServer;
let ws: string;

before(async () => {
  checkPrerequisites();
  ws = await sampleWorkspace('remind4', 4, 7, 'photo', {
    'maskloop.followNeighbours': false,
    'maskloop.backend': 'wasm',
  });
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
