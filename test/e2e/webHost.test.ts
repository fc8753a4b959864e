// VS Code for the web in a real workbench: the web VSIX (`npm run package:all`'s `web` target, what vscode.dev
// and github.dev install) in code-server, where an extension with only a browser entry runs in the browser's
// extension host, as on vscode.dev, with no Node.js. Its entry must start there, say that MaskLoop cannot run
// in a browser and where it does, answer every command and the mask editor with that, write nothing, and leave
// the workbench working.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { writeSampleData } from '../../src/cli/demo';
import { WEB_NOTICE } from '../../src/web/webNotice';
import { checkPrerequisites, CodeServer, ROOT, waitFor } from './codeServerHarness';

let cs: CodeServer;
let ws: string;

before(async () => {
  checkPrerequisites();
  const gen = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-e2e-web-data-'));
  const { images } = await writeSampleData(gen, 1, 64, 3);
  ws = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-e2e-web-ws-'));
  fs.copyFileSync(images[0], path.join(ws, 'scene.png'));
  fs.writeFileSync(path.join(ws, 'notes.txt'), 'labelling notes\n');
  // Built here from the current build (a second), unless package:all's is newer.
  const web = path.join(ROOT, 'dist-vsix', 'maskloop-web.vsix');
  const built = fs.statSync(path.join(ROOT, 'dist', 'web', 'extension.js')).mtimeMs;
  if (!fs.existsSync(web) || fs.statSync(web).mtimeMs < built) {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'package-all.mjs'), '--targets', 'web'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `building the web VSIX: ${r.stderr}`);
  }
  cs = new CodeServer(ws, path.join(ROOT, 'test-output', 'e2e'));
  cs.installExtension(web);
  await cs.start();
});

after(async () => {
  await cs?.stop();
});

const notice = () =>
  cs.page.locator('.notification-list-item-message', { hasText: 'cannot run in VS Code for the web' }).first();

test('VS Code for the web: the browser entry says where MaskLoop runs, answers its commands, and the workbench works', async () => {
  // The browser extension host starts after the workbench: until it has read the extension, the palette
  // does not list its commands.
  for (let attempt = 1; ; attempt++) {
    try {
      await cs.runCommand('MaskLoop: Fine-tune Model on Corrected Masks');
      await waitFor(
        'the notice',
        () =>
          notice()
            .isVisible()
            .catch(() => false),
        30_000,
      );
      break;
    } catch (err) {
      if (attempt >= 4) throw err;
      await cs.page.keyboard.press('Escape');
      await cs.page.waitForTimeout(5_000);
    }
  }
  const text = (await notice().textContent()) ?? '';
  assert.ok(text.includes(WEB_NOTICE.slice(0, 40)), text);
  assert.match(text, /Remote-SSH, WSL/);
  await cs.screenshot('09-web-notice');
  assert.ok(
    await cs.page.locator('.notification-list-item .monaco-button', { hasText: 'How to Install' }).first().isVisible(),
  );
  // Its button shows the README, whose Install section says which download fits which machine.
  await cs.page.locator('.notification-list-item .monaco-button', { hasText: 'How to Install' }).first().click();
  await cs.page
    .locator('.tabs-container .tab', { hasText: /Preview.*readme/i })
    .first()
    .waitFor({ state: 'visible', timeout: 30_000 });
  await waitFor(
    "the README's Install section in the preview",
    async () => {
      for (const f of cs.page.frames())
        if (await f.$('h2#install, h2[data-heading="Install"], [id="install"]').catch(() => null)) return true;
      return false;
    },
    30_000,
  );
  await cs.screenshot('11-web-readme');
  // It ran in the browser's extension host: the Node entry would have started the model process and written
  // the model folder on the first command.
  assert.equal(fs.existsSync(path.join(ws, '.maskloop')), false, 'nothing written in the workspace');

  // The mask editor opened on an image shows the notice in place of the editor.
  const frame = await cs.openWithMaskEditorCommand('scene.png', (timeout) =>
    waitFor(
      'the mask editor page with the notice',
      async () => {
        for (const f of cs.page.frames()) if (await f.$('#web-notice').catch(() => null)) return f;
        return null;
      },
      timeout,
    ),
  );
  assert.match((await frame.textContent('body')) ?? '', /scene\.png can be viewed with VS Code's image preview/);
  await cs.screenshot('10-web-mask-editor');

  // The workbench still works: a text file opens and takes an edit.
  await cs.quickOpen('notes.txt');
  const tab = cs.page.locator('.tabs-container .tab.active', { hasText: 'notes.txt' }).first();
  await tab.waitFor({ state: 'visible', timeout: 30_000 });
  await cs.page.locator('.monaco-editor .view-lines').first().click();
  await cs.page.keyboard.type('edited ');
  await waitFor(
    'the edit',
    async () => /edited/.test((await cs.page.locator('.monaco-editor .view-lines').first().textContent()) ?? ''),
    10_000,
  );
  assert.equal(
    cs.browserLog.filter((l) => /Extension host .*terminated|extension host .*crash/i.test(l)).length,
    0,
    cs.browserLog.join('\n'),
  );
  assert.equal(fs.existsSync(path.join(ws, '.maskloop')), false, 'still nothing written');
});
