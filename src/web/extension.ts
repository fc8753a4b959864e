// The extension's entry where there is no Node.js: VS Code for the web (vscode.dev, github.dev) and any browser
// extension host (a remote window whose folder lacks the extension runs it there). The model process, sharp,
// onnxruntime and TF.js's wasm backend need Node, so nothing of the engine loads here. Every command and the
// mask editor say so and point to where MaskLoop runs, instead of failing or doing nothing; the workbench is
// left as it was. Only `vscode` is imported: this bundle is built for the browser.
import * as vscode from 'vscode';
import { WEB_NOTICE, WEB_NOTICE_DETAIL, webNoticeHtml } from './webNotice';

/** The notice as a notification; its button shows the README, whose Install section says which download fits. */
async function tell(extensionUri: vscode.Uri): Promise<void> {
  const learn = 'How to Install';
  const pick = await vscode.window.showWarningMessage(`${WEB_NOTICE} ${WEB_NOTICE_DETAIL}`, learn);
  if (pick !== learn) return;
  // A VSIX holds it as readme.md (vsce renames it), a checkout as README.md.
  for (const name of ['readme.md', 'README.md']) {
    const readme = vscode.Uri.joinPath(extensionUri, name);
    const found = await vscode.workspace.fs.stat(readme).then(
      () => true,
      () => false,
    );
    if (found) return void (await vscode.commands.executeCommand('markdown.showPreview', readme));
  }
}

class NoticeEditor implements vscode.CustomReadonlyEditorProvider {
  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): void {
    panel.webview.options = { enableScripts: false };
    panel.webview.html = webNoticeHtml(document.uri.path.split('/').pop() ?? '');
  }
}

export function activate(context: vscode.ExtensionContext): void {
  const contributed = (context.extension.packageJSON as { contributes?: { commands?: { command: string }[] } })
    .contributes?.commands;
  for (const { command } of contributed ?? [])
    if (command !== 'maskloop.openInMaskEditor')
      context.subscriptions.push(vscode.commands.registerCommand(command, () => tell(context.extensionUri)));
  // Opening an image in the mask editor shows the notice in the editor's place (NoticeEditor).
  context.subscriptions.push(
    vscode.commands.registerCommand('maskloop.openInMaskEditor', async (uri?: vscode.Uri) => {
      const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
      const tabUri = tab instanceof vscode.TabInputCustom || tab instanceof vscode.TabInputText ? tab.uri : undefined;
      const target = uri ?? tabUri;
      if (target) await vscode.commands.executeCommand('vscode.openWith', target, 'maskloop.maskEditor');
      else await tell(context.extensionUri);
    }),
  );
  context.subscriptions.push(
    vscode.window.registerCustomEditorProvider('maskloop.maskEditor', new NoticeEditor(), {
      supportsMultipleEditorsPerDocument: true,
    }),
  );
}

export function deactivate(): void {
  // nothing to release: nothing was started
}
