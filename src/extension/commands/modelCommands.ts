// Commands around the model: roll back, report, details, pre-label a folder; and the editor commands that
// act on the focused mask editor (accept, reject, predict again, open).
import * as path from 'node:path';
import * as vscode from 'vscode';
import { doctorText } from '../../protocol/doctorText';
import { errorText } from '../../masks/fsErrors';
import { nonce } from '../html';
import { FOLLOWS_KEY, MODEL_VERSION_KEY, writeMask } from '../../io/maskIO';
import { reviewedNeighbours } from '../editor/sequenceNeighbours';
import { EDITOR_VIEW_TYPE, openReplacing, type MaskEditorProvider } from '../editor/maskEditorProvider';
import { suggestionPathFor } from '../editor/maskPath';
import { readSettings, workspaceRootFor } from '../settings';
import { ModelRequestError } from '../../modelServer/modelClient';
import { RESTRICTED_NOTICE, type ModelHub } from '../modelHub';
import { reportBody, reportHtml } from './modelReport';
import { findWorkspaceImages } from './workspaceMasks';

function settingsHere(): ReturnType<typeof readSettings> {
  return readSettings(vscode.workspace.workspaceFolders?.[0]?.uri);
}

export async function rollbackCommand(hub: ModelHub): Promise<void> {
  if (!hub.trusted) return void vscode.window.showWarningMessage(RESTRICTED_NOTICE);
  const s = settingsHere();
  const { current, versions, unreadable } = await hub.request('versions', { modelDir: s.modelFolder });
  for (const u of unreadable) void vscode.window.showWarningMessage(`MaskLoop: ${u.reason}`);
  const choices = versions
    .filter((v) => v.version !== current)
    .sort((a, b) => b.version - a.version)
    .map((v) => ({
      label: `Version ${v.version}`,
      description: v.accepted ? 'accepted' : 'kept aside',
      detail: `${v.createdAt} · mIoU ${v.metricsAfter?.miou?.toFixed(3) ?? '–'} · boundary IoU ${v.metricsAfter?.boundaryIoU?.toFixed(3) ?? '–'} · ${v.reason}`,
      version: v.version,
    }));
  if (choices.length === 0)
    return void vscode.window.showInformationMessage('MaskLoop: there is no other model version to roll back to.');
  const pick = await vscode.window.showQuickPick(choices, {
    title: `Roll back the model (current: version ${current ?? 'none'})`,
    placeHolder: 'Version to make current',
  });
  if (!pick) return;
  const r = await hub.request('rollback', { modelDir: s.modelFolder, version: pick.version });
  hub.modelChanged(s.modelFolder, r.current);
  void vscode.window.showInformationMessage(`MaskLoop: model version ${r.current} is current again.`);
}

export async function showModelReport(hub: ModelHub): Promise<void> {
  if (!hub.trusted) return void vscode.window.showWarningMessage(RESTRICTED_NOTICE);
  const s = settingsHere();
  const { current, versions, unreadable } = await hub.request('versions', { modelDir: s.modelFolder });
  for (const u of unreadable) void vscode.window.showWarningMessage(`MaskLoop: ${u.reason}`);
  const panel = vscode.window.createWebviewPanel(
    'maskloop.modelReport',
    'MaskLoop Model Report',
    vscode.ViewColumn.Active,
    { enableScripts: false },
  );
  panel.webview.html = reportHtml(
    panel.webview.cspSource,
    nonce(),
    `Model report: ${path.basename(path.dirname(s.modelFolder))}/${path.basename(s.modelFolder)}, current version ${current ?? 'none'}`,
    reportBody(current, versions),
  );
}

export async function showModelDetails(hub: ModelHub): Promise<void> {
  const s = settingsHere();
  const lines = [`Backend setting: ${s.backend}`, `Model folder: ${s.modelFolder}`];
  if (!hub.trusted) lines.push(RESTRICTED_NOTICE);
  else {
    const info = await hub.request('info', {});
    lines.push(`Backend: ${info.backend.label} (model process ${info.pid}, Node ${info.node})`);
    for (const a of info.backend.attempts) lines.push(`  ${a.backend}: ${a.reason}`);
    if (hub.hasModel(s.modelFolder)) {
      const d = await hub.request('describe', { modelDir: s.modelFolder });
      hub.noteVersion(s.modelFolder, d.meta.version);
      lines.push(
        `Model version ${d.meta.version}${d.meta.trained ? '' : ' (untrained)'}, ${d.parameters} parameters, ${d.gflopsAt512.toFixed(1)} GFLOP per 512x512, classes: ${d.meta.classes.classes.map((c) => c.name).join(', ')}`,
      );
    } else lines.push('No model yet: the first fine-tune creates one.');
  }
  for (const l of lines) hub.log(l);
  hub.output.show(true);
  void vscode.window.showInformationMessage(lines.slice(0, 3).join(' · '));
}

/** "MaskLoop: Check GPU": every backend, usable or not and why, with the fix, timed; in the MaskLoop output. */
export async function checkGpuCommand(hub: ModelHub): Promise<void> {
  if (!hub.trusted) return void vscode.window.showWarningMessage(RESTRICTED_NOTICE);
  const report = await vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: 'MaskLoop: checking every backend (a pre-label and a training step on each usable one)',
    },
    () => hub.request('doctor', { time: true }),
  );
  for (const line of doctorText(report)) hub.log(line);
  hub.output.show(true);
  const gpu = report.lines.find(
    (l) => l.name === report.selected && (l.name === 'webgpu' || l.name === 'tensorflow-gpu'),
  );
  const webgpu = report.lines.find((l) => l.name === 'webgpu');
  void vscode.window.showInformationMessage(
    gpu
      ? `MaskLoop runs on the GPU: ${report.selectedLabel}.`
      : `MaskLoop runs on the CPU (${report.selectedLabel}). WebGPU: ${webgpu?.reason ?? 'not checked'}${webgpu?.fix ? `. Fix: ${webgpu.fix}` : ''}`,
  );
}

export async function prelabelFolderCommand(hub: ModelHub, folderArg?: vscode.Uri): Promise<void> {
  if (!hub.trusted) return void vscode.window.showWarningMessage(RESTRICTED_NOTICE);
  const folder =
    folderArg ??
    (
      await vscode.window.showOpenDialog({
        canSelectFolders: true,
        canSelectFiles: false,
        openLabel: 'Pre-label this folder',
      })
    )?.[0];
  if (!folder) return;
  const s = readSettings(folder);
  if (!hub.hasModel(s.modelFolder))
    return void vscode.window.showWarningMessage(
      'MaskLoop: no model yet. Save some corrected masks and fine-tune first.',
    );
  const { unlabelled, reviewed } = await findWorkspaceImages(folder);
  if (unlabelled.length === 0)
    return void vscode.window.showInformationMessage(
      `MaskLoop: every image in ${folder.fsPath} already has a reviewed mask (${reviewed.length}).`,
    );
  let written = 0;
  const failed: string[] = [];
  await vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: `MaskLoop: pre-labelling ${unlabelled.length} images`,
      cancellable: true,
    },
    async (progress, token) => {
      const controller = new AbortController();
      token.onCancellationRequested(() => controller.abort());
      for (const item of unlabelled) {
        if (token.isCancellationRequested) break;
        progress.report({ increment: 100 / unlabelled.length, message: path.basename(item.image) });
        try {
          // A frame of a sequence follows its reviewed neighbour, as in the editor.
          const neighbours = s.followNeighbours
            ? await reviewedNeighbours(item.image, s.maskPath, workspaceRootFor(vscode.Uri.file(item.image)))
            : [];
          const r = await hub.request(
            'predict',
            { modelDir: s.modelFolder, image: item.image, ...(neighbours.length > 0 ? { neighbours } : {}) },
            { signal: controller.signal },
          );
          const follows: Record<string, string> =
            r.followed?.kind === 'followed' ? { [FOLLOWS_KEY]: path.basename(r.followed.image) } : {};
          // Unreviewed: a `.suggestion.png` beside where the mask would go, never the mask itself.
          await writeMask(
            suggestionPathFor(item.mask),
            { width: r.width, height: r.height, data: r.classMap },
            { [MODEL_VERSION_KEY]: String(r.modelVersion), ...follows },
          );
          written++;
        } catch (err) {
          if (err instanceof ModelRequestError && err.kind === 'cancelled') break;
          hub.log(`pre-label ${item.image}: ${(err as Error).message}`);
          failed.push(errorText(err));
        }
      }
    },
  );
  const done = `MaskLoop: wrote ${written} unreviewed suggestion(s) (*.suggestion.png); ${reviewed.length} image(s) with reviewed masks were left alone.`;
  if (failed.length === 0) void vscode.window.showInformationMessage(done);
  else
    void vscode.window.showWarningMessage(
      `${done} ${failed.length} image(s) could not be pre-labelled (all of them in the MaskLoop output), the first: ${failed[0]}`,
    );
}

export function editorCommands(editors: MaskEditorProvider): vscode.Disposable[] {
  const withDoc = (fn: (doc: NonNullable<MaskEditorProvider['activeDocument']>) => void) => (): void => {
    const doc = editors.activeDocument;
    if (!doc) return void vscode.window.showInformationMessage('MaskLoop: open an image in the mask editor first.');
    fn(doc);
  };
  return [
    vscode.commands.registerCommand(
      'maskloop.acceptSuggestion',
      withDoc((d) => editors.accept(d)),
    ),
    vscode.commands.registerCommand(
      'maskloop.rejectSuggestion',
      withDoc((d) => editors.reject(d)),
    ),
    vscode.commands.registerCommand(
      'maskloop.predict',
      withDoc((d) => void editors.predict(d)),
    ),
    vscode.commands.registerCommand('maskloop.openInMaskEditor', async (uri?: vscode.Uri) => {
      const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
      const tabUri = tab instanceof vscode.TabInputCustom || tab instanceof vscode.TabInputText ? tab.uri : undefined;
      const target =
        uri ??
        tabUri ??
        (
          await vscode.window.showOpenDialog({ filters: { Images: ['png', 'jpg', 'jpeg', 'webp', 'tif', 'tiff'] } })
        )?.[0];
      if (!target) return;
      // In place of the tab that showed the image (VS Code's image preview, say), as "Reopen Editor With..." does.
      await openReplacing(
        target,
        (input) => input.viewType !== EDITOR_VIEW_TYPE && input.uri.toString() === target.toString(),
      );
    }),
    vscode.commands.registerCommand('maskloop.previousFrame', () => editors.stepFrame(-1)),
    vscode.commands.registerCommand('maskloop.nextFrame', () => editors.stepFrame(1)),
  ];
}
