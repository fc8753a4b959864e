// The extension's side of the model process: starts it lazily, keeps the status bar true (backend, model
// version, busy), refuses model work in a restricted workspace, and tells open editors when the model changes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { BackendChoice } from '../protocol/settings';
import { ModelClient, type CallOptions } from '../modelServer/modelClient';
import type { RequestMap, RequestType } from '../protocol/modelProtocol';

/**
 * What the model process may do in restricted mode: say what it runs on, and click segmentation, which reads
 * the image being edited and a click model from the user's settings that lies outside the workspace (checked
 * by ClickSegmenter; the setting's workspace value is ignored there, as package.json's restrictedConfigurations
 * says). Nothing of the workspace's model folder is read, and nothing is trained.
 */
const RESTRICTED_REQUESTS: ReadonlySet<RequestType> = new Set<RequestType>(['info', 'clickPrepare', 'clickSegment']);

export const RESTRICTED_NOTICE =
  'Restricted mode: the model is neither loaded from this workspace nor trained. Trust the workspace to get suggestions.';

export class ModelHub implements vscode.Disposable {
  private client: ModelClient | undefined;
  private clientBackend: BackendChoice | undefined;
  private busy = 0;
  private backendLabel: string | undefined;
  private readonly versions = new Map<string, number | null>();
  private readonly statusItem: vscode.StatusBarItem;
  private readonly changed = new vscode.EventEmitter<{ modelDir: string }>();
  /** Fires after a fine-tune or rollback changed a model folder's current version. */
  readonly onDidChangeModel = this.changed.event;

  constructor(
    readonly output: vscode.OutputChannel,
    private readonly backend: () => BackendChoice,
  ) {
    this.statusItem = vscode.window.createStatusBarItem('maskloop.status', vscode.StatusBarAlignment.Right, 100);
    this.statusItem.name = 'MaskLoop model';
    this.statusItem.command = 'maskloop.showModelDetails';
    this.render();
  }

  get trusted(): boolean {
    return vscode.workspace.isTrusted;
  }

  log(line: string): void {
    this.output.appendLine(`[${new Date().toISOString()}] ${line}`);
  }

  private getClient(): ModelClient {
    const backend = this.backend();
    if (this.client && this.clientBackend !== backend) {
      this.log(`backend setting changed to ${backend}: restarting the model process`);
      this.client.dispose();
      this.client = undefined;
      this.backendLabel = undefined;
    }
    if (!this.client) {
      this.client = new ModelClient({ backend, log: (line) => this.log(`model: ${line}`) });
      this.clientBackend = backend;
    }
    return this.client;
  }

  /** True when the folder holds a current model. */
  hasModel(modelDir: string): boolean {
    return fs.existsSync(path.join(modelDir, 'model.json'));
  }

  /** A typed request to the model process, counted as busy in the status bar. */
  async request<K extends RequestType>(
    type: K,
    params: RequestMap[K]['params'],
    call: CallOptions = {},
  ): Promise<RequestMap[K]['result']> {
    if (!this.trusted && !RESTRICTED_REQUESTS.has(type)) throw new Error(RESTRICTED_NOTICE);
    this.busy++;
    this.render();
    const started = Date.now();
    try {
      if (!this.backendLabel) {
        const info = await this.getClient().request('info', {});
        this.backendLabel = info.backend.label;
        this.log(
          `model process ${info.pid} on ${info.backend.label} (${info.backend.attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ')})`,
        );
      }
      const result = await this.getClient().request(type, params, call);
      this.log(`${type} done in ${Date.now() - started} ms`);
      return result;
    } catch (err) {
      this.log(`${type} failed after ${Date.now() - started} ms: ${(err as Error).message}`);
      throw err;
    } finally {
      this.busy--;
      this.render();
    }
  }

  noteVersion(modelDir: string, version: number | null): void {
    this.versions.set(modelDir, version);
    this.render();
  }

  modelChanged(modelDir: string, version: number | null): void {
    this.noteVersion(modelDir, version);
    this.changed.fire({ modelDir });
  }

  get backendName(): string | undefined {
    return this.backendLabel;
  }

  get processId(): number | undefined {
    return this.client?.pid;
  }

  private render(): void {
    const kind = this.backendLabel ? shortBackend(this.backendLabel) : 'not started';
    const version = [...this.versions.values()].at(-1);
    const parts = [`MaskLoop: ${kind}`];
    if (version !== undefined && version !== null) parts.push(`v${version}`);
    if (!this.trusted) parts.push('restricted');
    this.statusItem.text = `${this.busy > 0 ? '$(sync~spin)' : '$(circuit-board)'} ${parts.join(' · ')}`;
    this.statusItem.tooltip =
      this.busy > 0
        ? 'The model process is working'
        : `Backend: ${this.backendLabel ?? 'starts on first use'}. Click for details.`;
    this.statusItem.show();
  }

  dispose(): void {
    this.client?.dispose();
    this.client = undefined;
    this.statusItem.dispose();
    this.changed.dispose();
  }
}

/** GPU / CPU native / wasm / JS, from the engine's backend label. */
export function shortBackend(label: string): string {
  const l = label.toLowerCase();
  if (l.includes('gpu')) return 'GPU';
  if (l.includes('wasm') || l.includes('webassembly')) return 'wasm';
  if (l.includes('native') || l.includes('libtensorflow') || l.includes('tensorflow')) return 'CPU native';
  return 'JS';
}
