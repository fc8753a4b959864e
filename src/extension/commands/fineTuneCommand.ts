// "MaskLoop: Fine-tune Model on Corrected Masks": every saved mask in the workspace, one cancellable run in
// the model process, a new model version under the engine's acceptance rule, then fresh suggestions.
// "MaskLoop: Quick Fine-tune (Context Head Only)" is the same with 0 epochs: only the pretrained network's
// context head is fitted, in seconds (training/contextHeadFit.ts).
import * as path from 'node:path';
import * as vscode from 'vscode';
import { errorText } from '../../masks/fsErrors';
import { imageSize } from '../../io/imageIO';
import { readPngSize } from '../../io/maskIO';
import type { MetricSummary } from '../../masks/segmentationMetrics';
import type { PairRef } from '../../protocol/modelProtocol';
import { ModelRequestError } from '../../modelServer/modelClient';
import type { MaskEditorProvider } from '../editor/maskEditorProvider';
import { readSettings } from '../settings';
import { configuredClickModel } from '../editor/clickSegmentation';
import { RESTRICTED_NOTICE, type ModelHub } from '../modelHub';
import { findWorkspaceImages } from './workspaceMasks';

function fmt(m: MetricSummary | null, key: 'miou' | 'boundaryIoU'): string {
  return m ? m[key].toFixed(3) : 'n/a';
}

async function misfitMasks(pairs: PairRef[]): Promise<{ mask: string; why: string }[]> {
  const out: { mask: string; why: string }[] = [];
  for (const p of pairs) {
    try {
      const m = await readPngSize(p.mask);
      if (!m) {
        out.push({ mask: p.mask, why: 'not a PNG' });
        continue;
      }
      const i = await imageSize(p.image);
      if (m.width !== i.width || m.height !== i.height)
        out.push({ mask: p.mask, why: `${m.width}x${m.height}, image ${i.width}x${i.height}` });
    } catch (err) {
      out.push({ mask: p.mask, why: (err as Error).message });
    }
  }
  return out;
}

/** A fine-tune in this window, from the command or the reminder: a second one would train again on the same masks. */
let running = false;

export async function fineTuneCommand(
  hub: ModelHub,
  editors: MaskEditorProvider,
  options: { quick?: boolean } = {},
): Promise<void> {
  if (!hub.trusted) {
    void vscode.window.showWarningMessage(RESTRICTED_NOTICE);
    return;
  }
  if (running) {
    void vscode.window.showInformationMessage(
      'MaskLoop: a fine-tune is already running (its progress is in the notifications); it learns from every mask saved before it began.',
    );
    return;
  }
  running = true;
  try {
    await fineTuneOnce(hub, editors, options);
  } finally {
    running = false;
  }
}

async function fineTuneOnce(hub: ModelHub, editors: MaskEditorProvider, options: { quick?: boolean }): Promise<void> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) {
    void vscode.window.showWarningMessage(
      'Open a folder first: MaskLoop fine-tunes on the saved masks of the workspace.',
    );
    return;
  }
  const dirty = editors.openDocuments.filter((d) => d.isDirty);
  if (dirty.length > 0) {
    const save = 'Save all and fine-tune';
    const pick = await vscode.window.showWarningMessage(
      `${dirty.length} open mask(s) have unsaved edits; only saved masks are learned from.`,
      save,
      'Fine-tune on saved masks only',
    );
    if (!pick) return;
    if (pick === save) await vscode.workspace.saveAll(false);
  }
  const found = await findWorkspaceImages();
  // A saved mask whose size differs from its image would stop the whole fine-tune: name it and offer to go on.
  const misfits = await misfitMasks(found.reviewed);
  let reviewed = found.reviewed;
  if (misfits.length > 0) {
    const goOn = 'Fine-tune without them';
    const list = misfits
      .slice(0, 3)
      .map((m) => `${path.basename(m.mask)} (${m.why})`)
      .join('; ');
    const pick = await vscode.window.showWarningMessage(
      `${misfits.length} saved mask(s) cannot be learned from: ${list}${misfits.length > 3 ? '; ...' : ''}. Open their images in the mask editor to resize or redo them.`,
      goOn,
    );
    for (const m of misfits) hub.log(`not learned from: ${m.mask}: ${m.why}`);
    if (pick !== goOn) return;
    reviewed = reviewed.filter((r) => !misfits.some((m) => m.mask === r.mask));
  }
  if (reviewed.length === 0) {
    void vscode.window.showWarningMessage(
      'No saved masks in this workspace yet: accept or paint a mask in the mask editor, save it, then fine-tune.',
    );
    return;
  }
  const settings = readSettings(folder.uri);
  const fineTuneSettings = options.quick ? { ...settings.fineTune, epochs: 0 } : settings.fineTune;
  const what = options.quick ? 'quick fine-tune (context head only)' : 'fine-tune';
  const root = folder.uri.fsPath;
  // Learnt edges for the click tool are fitted with a full fine-tune when a click model is set up (and allowed).
  const configured = configuredClickModel();
  const clickModel =
    !options.quick &&
    !('reason' in configured) &&
    vscode.workspace.getConfiguration('maskloop', folder.uri).get<boolean>('clickEdges', true)
      ? configured
      : undefined;
  hub.log(`${what} on ${reviewed.length} saved masks into ${settings.modelFolder}`);
  try {
    const r = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `MaskLoop: ${options.quick ? 'quick fine-tune' : 'fine-tuning'} on ${reviewed.length} masks`,
        cancellable: true,
      },
      async (progress, token) => {
        const controller = new AbortController();
        token.onCancellationRequested(() => controller.abort());
        let lastPct = 0;
        return hub.request(
          'fineTune',
          {
            modelDir: settings.modelFolder,
            createIfMissing: true,
            encoder: settings.encoder,
            classes: { classes: settings.classes },
            pairs: reviewed,
            datasetManifest: path.join(path.dirname(settings.modelFolder), 'dataset.json'),
            settings: fineTuneSettings,
            workspaceRoot: root,
            ...(clickModel ? { clickModel } : {}),
          },
          {
            signal: controller.signal,
            onProgress: (e) => {
              if (e.type === 'prepare') progress.report({ message: e.message });
              else if (e.type === 'fineTune') {
                const p = e.progress;
                const pct = Math.floor((100 * ((p.epoch - 1) * p.steps + p.step)) / Math.max(1, p.epochs * p.steps));
                const val = p.val
                  ? `, validation mIoU ${p.val.miou.toFixed(3)}, boundary IoU ${p.val.boundaryIoU.toFixed(3)}`
                  : '';
                progress.report({
                  increment: Math.max(0, pct - lastPct),
                  message: `epoch ${p.epoch}/${p.epochs}, step ${p.step}/${p.steps}, loss ${p.loss.toFixed(4)}${val}, ~${Math.round(p.etaSeconds)} s left`,
                });
                lastPct = Math.max(lastPct, pct);
              }
            },
          },
        );
      },
    );
    const metrics = `validation mIoU ${fmt(r.metricsBefore, 'miou')} → ${fmt(r.metricsAfter, 'miou')}, boundary IoU ${fmt(r.metricsBefore, 'boundaryIoU')} → ${fmt(r.metricsAfter, 'boundaryIoU')}`;
    hub.log(
      `${what}: version ${r.version} ${r.accepted ? 'accepted' : 'kept aside'} (${r.reason}); ${metrics}; ${r.trainImages} train / ${r.validationImages} validation images, ${r.steps} steps in ${r.seconds.toFixed(1)} s (${r.threads}; training steps ${r.timing.training.toFixed(1)} s); ${r.augmentation}; pixel head ${r.pixelHead}; click edges ${r.clickEdges}`,
    );
    hub.modelChanged(settings.modelFolder, r.current);
    if (r.accepted)
      void vscode.window.showInformationMessage(
        `MaskLoop: model version ${r.version} is now current (${r.seconds.toFixed(0)} s). ${metrics}.`,
      );
    else if (r.trainingFit.learnedNothing)
      void vscode.window.showWarningMessage(
        `MaskLoop: the ${what} learned nothing; version ${r.version} was kept aside and version ${r.current} stays current. ${r.trainingFit.reason.replace(/^learned nothing: /, '')}.`,
      );
    else
      void vscode.window.showWarningMessage(
        `MaskLoop: version ${r.version} was kept aside, version ${r.current} stays current: ${r.reason}. ${metrics}.`,
      );
  } catch (err) {
    if (err instanceof ModelRequestError && err.kind === 'cancelled') {
      void vscode.window.showInformationMessage('MaskLoop: fine-tune cancelled; the current model is unchanged.');
      return;
    }
    hub.log(
      `${what} failed: ${(err as Error).stack ?? String(err)}${err instanceof ModelRequestError ? `\n${err.message}` : ''}`,
    );
    void vscode.window.showErrorMessage(`MaskLoop: ${what} failed: ${errorText(err)}`);
  }
}
