// Runs inside VS Code desktop (see runDesktop.ts): opens an image in the mask editor, paints nothing but
// accepts and saves through commands, and fine-tunes; checks what lands on disk.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

async function waitFor<T>(what: string, probe: () => T | undefined | false, ms = 120_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function run(): Promise<void> {
  const ws = vscode.workspace.workspaceFolders![0].uri.fsPath;
  const image = path.join(ws, 'images', 'sample_001.png');
  const mask = path.join(ws, 'images', 'sample_001.mask.png');
  // No model yet: the first fine-tune needs a saved mask. Copy the exact mask as the person's correction.
  fs.copyFileSync(path.join(ws, 'truth', 'sample_001.png'), mask);
  await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(image), 'maskloop.maskEditor');
  await vscode.commands.executeCommand('maskloop.fineTune');
  const modelJson = path.join(ws, '.maskloop', 'model', 'model.json');
  await waitFor('a model on disk', () => fs.existsSync(modelJson), 600_000);
  const versions = fs.readdirSync(path.join(ws, '.maskloop', 'model', 'versions'));
  assert.ok(versions.length >= 1, 'a model version was written');
  const second = path.join(ws, 'images', 'sample_002.png');
  await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(second), 'maskloop.maskEditor');
  // Accept is a no-op until the suggestion arrives: retry until the editor becomes dirty, then save.
  const secondMask = path.join(ws, 'images', 'sample_002.mask.png');
  await waitFor('an accepted suggestion', () => {
    void vscode.commands.executeCommand('maskloop.acceptSuggestion');
    return vscode.window.tabGroups.activeTabGroup.activeTab?.isDirty;
  });
  await vscode.commands.executeCommand('workbench.action.files.save');
  await waitFor('the saved mask', () => fs.existsSync(secondMask));
  await waitFor(
    'the editor to be clean after saving',
    () => vscode.window.tabGroups.activeTabGroup.activeTab?.isDirty === false,
  );
  // A PNG of the image's size (its IHDR width and height), written by the save.
  const png = fs.readFileSync(secondMask);
  const imagePng = fs.readFileSync(second);
  assert.equal(png.toString('latin1', 1, 4), 'PNG');
  assert.deepEqual(
    [png.readUInt32BE(16), png.readUInt32BE(20)],
    [imagePng.readUInt32BE(16), imagePng.readUInt32BE(20)],
  );
}
