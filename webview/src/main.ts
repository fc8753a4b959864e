// Entry point of the mask editor webview: wires VS Code's webview API to the editor app.
import type { HostToWebview, WebviewToHost } from '../../src/protocol/editorProtocol';
import { EditorApp, type ViewState } from './editorApp';

interface VsCodeApi {
  postMessage(message: WebviewToHost): void;
  getState(): Partial<ViewState> | undefined;
  setState(state: ViewState): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const root = document.getElementById('app');
if (!root) throw new Error('mask editor: #app missing');
const app = new EditorApp(root, {
  post: (m) => vscode.postMessage(m),
  getState: () => vscode.getState(),
  setState: (s) => vscode.setState(s),
});
window.addEventListener('message', (e: MessageEvent<HostToWebview>) => app.handle(e.data));
window.addEventListener('error', (e) =>
  vscode.postMessage({ type: 'log', level: 'error', message: String(e.message) }),
);
vscode.postMessage({ type: 'ready' });
