import * as vscode from 'vscode';
import { fineTuneCommand } from './commands/fineTuneCommand';
import { exportMasksCommand, importLabelsCommand } from './commands/formatCommands';
import { ModelHub } from './modelHub';
import {
  editorCommands,
  prelabelFolderCommand,
  rollbackCommand,
  showModelDetails,
  checkGpuCommand,
  showModelReport,
} from './commands/modelCommands';
import { EDITOR_VIEW_TYPE, MaskEditorProvider } from './editor/maskEditorProvider';
import { propagateCommand } from './commands/propagateCommand';
import { setUpClickSegmentationCommand } from './commands/clickSetupCommand';
import { readSettings } from './settings';
import { errorText } from '../masks/fsErrors';

// The extension host never runs tensor work: everything goes through the model process, started lazily.
export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('MaskLoop');
  const hub = new ModelHub(output, () => readSettings(vscode.workspace.workspaceFolders?.[0]?.uri).backend);
  const editors = new MaskEditorProvider(context, hub);
  const guard =
    (name: string, fn: (...args: never[]) => Promise<void>) =>
    async (...args: never[]): Promise<void> => {
      try {
        await fn(...args);
      } catch (err) {
        hub.log(`${name} failed: ${(err as Error).stack ?? String(err)}`);
        void vscode.window.showErrorMessage(`MaskLoop: ${name} failed: ${errorText(err)}`);
      }
    };
  context.subscriptions.push(
    output,
    hub,
    vscode.window.registerCustomEditorProvider(EDITOR_VIEW_TYPE, editors, {
      webviewOptions: { retainContextWhenHidden: false },
      supportsMultipleEditorsPerDocument: true,
    }),
    ...editorCommands(editors),
    vscode.commands.registerCommand(
      'maskloop.fineTune',
      guard('fine-tune', () => fineTuneCommand(hub, editors)),
    ),
    vscode.commands.registerCommand(
      'maskloop.fineTuneQuick',
      guard('quick fine-tune', () => fineTuneCommand(hub, editors, { quick: true })),
    ),
    vscode.commands.registerCommand(
      'maskloop.rollback',
      guard('roll back', () => rollbackCommand(hub)),
    ),
    vscode.commands.registerCommand(
      'maskloop.showModelReport',
      guard('model report', () => showModelReport(hub)),
    ),
    vscode.commands.registerCommand(
      'maskloop.showModelDetails',
      guard('model details', () => showModelDetails(hub)),
    ),
    vscode.commands.registerCommand(
      'maskloop.checkGpu',
      guard('GPU check', () => checkGpuCommand(hub)),
    ),
    vscode.commands.registerCommand(
      'maskloop.importLabels',
      guard('import', () => importLabelsCommand(hub)),
    ),
    vscode.commands.registerCommand(
      'maskloop.exportMasks',
      guard('export', () => exportMasksCommand(hub)),
    ),
    vscode.commands.registerCommand(
      'maskloop.propagateFrames',
      guard('propagate', (uri?: vscode.Uri) => propagateCommand(hub, editors, uri)),
    ),
    vscode.commands.registerCommand(
      'maskloop.setUpClickSegmentation',
      guard('click segmentation set-up', () => setUpClickSegmentationCommand(hub, context.globalStorageUri.fsPath)),
    ),
    vscode.commands.registerCommand(
      'maskloop.prelabelFolder',
      guard('pre-label folder', (uri?: vscode.Uri) => prelabelFolderCommand(hub, uri)),
    ),
  );
  hub.log(
    `MaskLoop ${String(context.extension.packageJSON.version)} activated; workspace ${vscode.workspace.isTrusted ? 'trusted' : 'restricted'}`,
  );
}

export function deactivate(): void {
  // The ModelHub (in context.subscriptions) stops the model process.
}
