// The reminder to fine-tune, in a real VS Code: a workspace of images with no mask and no model. Saving the
// first corrected mask asks nothing; saving the second asks whether to fine-tune now, and "Fine-tune Now" runs
// the fine-tune, which writes the model's first version from the two masks; a second fine-tune asked for while
// it runs is refused.
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
  ws = await sampleWorkspace('remind', 3, 5, 'scene', {
    'maskloop.fineTune.epochs': 1,
    'maskloop.fineTune.cropSize': 64,
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

test('the second corrected mask brings the reminder to fine-tune; "Fine-tune Now" writes the first version', async () => {
  await correctAndSave('scene_1.png');
  await cs.page.waitForTimeout(3_000);
  assert.equal(await reminder().isVisible(), false, 'one mask: no reminder');
  await correctAndSave('scene_2.png');
  await waitFor(
    'the reminder',
    () =>
      reminder()
        .isVisible()
        .catch(() => false),
    30_000,
  );
  assert.match((await reminder().textContent()) ?? '', /2 corrected masks/);
  await cs.screenshot('12-fine-tune-reminder');
  await reminder().locator('.monaco-button', { hasText: 'Fine-tune Now' }).click();
  await cs.waitForNotification('fine-tuning on 2 masks', 60_000);
  // A second fine-tune while it runs is refused, not queued to train again on the same masks.
  await cs.runCommand('MaskLoop: Fine-tune Model on Corrected Masks');
  await cs.waitForNotification('a fine-tune is already running', 30_000);
  const version = path.join(ws, '.maskloop', 'model', 'versions', '0001', 'manifest.json');
  await waitFor('the fine-tuned version', () => fs.existsSync(version), 300_000);
  await cs.page.waitForTimeout(5_000);
  assert.equal(fs.existsSync(path.join(ws, '.maskloop', 'model', 'versions', '0002')), false, 'one fine-tune ran');
  const manifest = JSON.parse(fs.readFileSync(version, 'utf8')) as { train: { mask: string }[] };
  assert.deepEqual(
    manifest.train.map((t) => path.basename(t.mask)).sort(),
    ['scene_1.mask.png', 'scene_2.mask.png'],
    'trained on the two corrected masks',
  );
});
