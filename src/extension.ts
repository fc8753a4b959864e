import * as vscode from 'vscode';
import { ModelClient } from './modelServer/modelClient';

// The extension host never runs tensor work: everything goes through the model process, started lazily.
let client: ModelClient | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('MaskLoop');
  const getClient = (): ModelClient => {
    client ??= new ModelClient({ log: (line) => output.appendLine(line) });
    return client;
  };
  context.subscriptions.push(
    output,
    vscode.commands.registerCommand('maskloop.showBackend', async () => {
      const info = await getClient().request('info', {});
      output.appendLine(`backend: ${info.backend.label}; ${info.backend.attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ')}`);
      void vscode.window.showInformationMessage(`MaskLoop runs on ${info.backend.label}.`);
    }),
    { dispose: () => client?.dispose() },
  );
}

export function deactivate(): void {
  client?.dispose();
  client = undefined;
}
