// "MaskLoop: Set Up Click Segmentation...": pick a SAM-family encoder/decoder pair on disk, or download a listed
// one (pinned by URL, size and SHA-256, its licence shown first) into the extension's storage, with progress,
// cancel and resume. The pair is checked in the model process before it becomes `maskloop.clickModel`.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { clickModelFiles } from '../../io/clickModelFiles';
import { downloadCatalogueModel } from '../../io/download';
import { CLICK_CATALOGUE } from '../../protocol/clickCatalogue';
import { CancelledError } from '../../protocol/errors';
import type { ClickModelFiles } from '../../protocol/modelProtocol';
import type { ModelHub } from '../modelHub';

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

async function check(hub: ModelHub, files: ClickModelFiles): Promise<string> {
  const r = await hub.request('clickCheck', { model: files });
  return `${r.layout === 'sam2' ? 'SAM 2' : 'SAM'} layout, input ${r.inputSize}x${r.inputSize}`;
}

export async function setUpClickSegmentationCommand(hub: ModelHub, storageDir: string): Promise<void> {
  const local = { label: '$(folder-opened) Use an encoder/decoder pair on this machine...', id: 'local' };
  const items = [
    local,
    ...CLICK_CATALOGUE.map((m) => ({
      label: `$(cloud-download) Download ${m.label}`,
      detail: `${m.detail}. Licence: ${m.licence}`,
      id: m.id,
    })),
  ];
  const pick = await vscode.window.showQuickPick(items, {
    title: 'MaskLoop: click segmentation (SAM-family ONNX models)',
    placeHolder: 'Pick files you have, or download a model (nothing is downloaded unless you pick one)',
  });
  if (!pick) return;
  let encoder: string;
  if (pick.id === 'local') {
    const uris = await vscode.window.showOpenDialog({
      title: 'The encoder (NAME.encoder.onnx) of a SAM-family pair; its NAME.decoder.onnx must be beside it',
      canSelectMany: false,
      filters: { 'ONNX encoder': ['onnx'] },
    });
    if (!uris?.[0]) return;
    encoder = uris[0].fsPath;
  } else {
    const model = CLICK_CATALOGUE.find((m) => m.id === pick.id);
    if (!model) return;
    const size = mib(model.encoder.size + model.decoder.size);
    const go = await vscode.window.showInformationMessage(
      `Download ${model.label} (${size})?`,
      {
        modal: true,
        detail: `From ${new URL(model.encoder.url).host}, checked against its published SHA-256.\nLicence: ${model.licence}.`,
      },
      'Download',
    );
    if (go !== 'Download') return;
    const dir = path.join(storageDir, 'clickModels');
    try {
      encoder = await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: `MaskLoop: downloading ${model.label}`,
          cancellable: true,
        },
        async (progress, token) => {
          const controller = new AbortController();
          token.onCancellationRequested(() => controller.abort());
          return downloadCatalogueModel(
            model,
            dir,
            (message, increment) => progress.report({ message, increment }),
            controller.signal,
          );
        },
      );
    } catch (err) {
      if (err instanceof CancelledError) {
        void vscode.window.showInformationMessage('MaskLoop: download cancelled; run the command again to resume it.');
        return;
      }
      throw err;
    }
  }
  const files = clickModelFiles(encoder);
  const what = await check(hub, files);
  await vscode.workspace
    .getConfiguration('maskloop')
    .update('clickModel', files.encoder, vscode.ConfigurationTarget.Global);
  void vscode.window.showInformationMessage(
    `MaskLoop: click segmentation uses ${path.basename(files.encoder)} (${what}). In the mask editor press K, then click the object.`,
  );
}
