// The custom editor `maskloop.maskEditor`: opens documents, connects each to its webviews, and keeps the
// model's suggestion coming. Tensor work goes to the model process through the ModelHub, never here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { FineTuneReminder } from '../fineTuneReminder';
import { ModelRequestError } from '../../modelServer/modelClient';
import { RESTRICTED_NOTICE, type ModelHub } from '../modelHub';
import {
  assertNever,
  type EditorSettings,
  type FramePosition,
  type SuggestionState,
  type WebviewToHost,
} from '../../protocol/editorProtocol';
import { QUICK_NEIGHBOURS, type RequestMap } from '../../protocol/modelProtocol';
import { MaskDocument } from './maskDocument';
import { isMaskFile, resolveMaskPath } from './maskPath';
import { framePosition, reviewedNeighbours, sequenceFrames } from './sequenceNeighbours';
import { pendingMessage } from './predictionProgress';
import { readSettings, workspaceRootFor } from '../settings';
import { editorHtml, errorHtml } from './webviewHtml';
import { ClickSegmenter } from './clickSegmentation';

type ReadySuggestion = Extract<SuggestionState, { state: 'ready' }>;

export const EDITOR_VIEW_TYPE = 'maskloop.maskEditor';

interface Prediction {
  controller: AbortController;
  serial: number;
}

export class MaskEditorProvider implements vscode.CustomEditorProvider<MaskDocument> {
  private readonly changed = new vscode.EventEmitter<vscode.CustomDocumentEditEvent<MaskDocument>>();
  readonly onDidChangeCustomDocument = this.changed.event;
  private readonly documents = new Set<MaskDocument>();
  private readonly predictions = new Map<MaskDocument, Prediction>();
  private predictionSerial = 0;
  private active: MaskDocument | undefined;
  private readonly clicks: ClickSegmenter;
  private readonly reminder: FineTuneReminder;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly hub: ModelHub,
  ) {
    this.clicks = new ClickSegmenter(hub, context.globalStorageUri.fsPath);
    this.reminder = new FineTuneReminder(hub);
    context.subscriptions.push(
      hub.onDidChangeModel(() => {
        for (const doc of this.documents) void this.predict(doc);
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('maskloop'))
          for (const doc of this.documents) doc.post({ type: 'settings', settings: this.editorSettings(doc) });
        if (e.affectsConfiguration('maskloop.clickModel'))
          for (const doc of this.documents) void this.clicks.prepare(doc);
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => {
        for (const doc of this.documents) {
          doc.post({ type: 'settings', settings: this.editorSettings(doc) });
          void this.predict(doc)
            .catch(() => undefined)
            .then(() => this.clicks.prepare(doc));
        }
      }),
    );
  }

  /** The document of the mask editor that has focus (or was last focused). */
  get activeDocument(): MaskDocument | undefined {
    return this.active;
  }

  get openDocuments(): readonly MaskDocument[] {
    return [...this.documents];
  }

  async openCustomDocument(uri: vscode.Uri, openContext: vscode.CustomDocumentOpenContext): Promise<MaskDocument> {
    const settings = readSettings(uri);
    const root = workspaceRootFor(uri);
    let maskFile: string;
    try {
      maskFile = resolveMaskPath(settings.maskPath, uri.fsPath, root);
    } catch (err) {
      return MaskDocument.failed(uri, (err as Error).message);
    }
    if (isMaskFile(uri.fsPath, settings.maskPath)) {
      return MaskDocument.failed(
        uri,
        'This file is a mask (or a model suggestion), not an image to label. Open its image instead.',
      );
    }
    if (openContext.backupId)
      this.hub.log(`restoring ${path.basename(uri.fsPath)} from backup ${openContext.backupId}`);
    const doc = await MaskDocument.open(uri, openContext.untitledDocumentData ? undefined : openContext.backupId, {
      maskFile,
      classes: settings.classes,
      onSizeMismatch: async (mask, image) => {
        const resize = 'Resize mask to image';
        const empty = 'Start with an empty mask';
        const pick = await vscode.window.showWarningMessage(
          `The mask ${path.basename(maskFile)} is ${mask.width}x${mask.height} but ${path.basename(uri.fsPath)} is ${image.width}x${image.height}.`,
          { modal: true, detail: 'Nothing is written until you save. Cancel leaves both files as they are.' },
          resize,
          empty,
        );
        return pick === resize ? 'resize' : pick === empty ? 'empty' : 'cancel';
      },
    });
    if (doc.startingMask)
      this.hub.log(
        `${path.basename(uri.fsPath)}: no saved mask; offering the labelme annotations in ${doc.startingMask.source} as the starting mask`,
      );
    this.documents.add(doc);
    doc.onDidChange((e) => this.changed.fire(e));
    doc.onDidDispose(() => {
      this.documents.delete(doc);
      this.predictions.get(doc)?.controller.abort();
      this.predictions.delete(doc);
      if (this.active === doc) this.active = undefined;
    });
    if (doc.image) {
      const watcher = vscode.workspace.createFileSystemWatcher(
        new vscode.RelativePattern(vscode.Uri.file(path.dirname(maskFile)), path.basename(maskFile)),
      );
      const onDisk = (): void => {
        void doc
          .onDiskChange(async () => {
            const reload = 'Reload from disk';
            const pick = await vscode.window.showWarningMessage(
              `${path.basename(maskFile)} changed on disk, and this editor has unsaved edits.`,
              reload,
              'Keep my edits',
            );
            return pick === reload;
          })
          .catch((err: Error) => this.hub.log(`reload of ${maskFile} failed: ${err.message}`));
      };
      watcher.onDidChange(onDisk);
      watcher.onDidCreate(onDisk);
      watcher.onDidDelete(onDisk);
      doc.onDidDispose(() => watcher.dispose());
    }
    return doc;
  }

  async resolveCustomEditor(doc: MaskDocument, panel: vscode.WebviewPanel): Promise<void> {
    const webview = panel.webview;
    const roots = [
      vscode.Uri.joinPath(this.context.extensionUri, 'dist'),
      vscode.Uri.joinPath(this.context.extensionUri, 'media'),
    ];
    webview.options = { enableScripts: !!doc.image, localResourceRoots: roots };
    if (!doc.image) {
      webview.html = errorHtml(webview, this.context.extensionUri, doc.uri.fsPath, doc.loadError ?? 'unknown error');
      this.hub.log(`cannot open ${doc.uri.fsPath}: ${doc.loadError}`);
      return;
    }
    const image = doc.image;
    const frame = await framePosition(doc.uri.fsPath, readSettings(doc.uri).maskPath);
    const version = String(this.context.extension.packageJSON.version ?? '0');
    webview.html = editorHtml(webview, this.context.extensionUri, version);
    const subs: vscode.Disposable[] = [];
    subs.push(doc.onDidUpdateViews((m) => void webview.postMessage(m)));
    subs.push(webview.onDidReceiveMessage((m: WebviewToHost) => this.onMessage(doc, m, image, frame)));
    subs.push(
      panel.onDidChangeViewState(() => {
        if (panel.active) this.active = doc;
      }),
    );
    if (panel.active) this.active = doc;
    panel.onDidDispose(() => subs.forEach((s) => s.dispose()));
  }

  private onMessage(
    doc: MaskDocument,
    m: WebviewToHost,
    image: { width: number; height: number; data: Uint8Array },
    frame: FramePosition | null,
  ): void {
    switch (m.type) {
      case 'ready': {
        const rgba = new Uint8Array(image.width * image.height * 4);
        for (let i = 0, j = 0; i < image.data.length; i += 3, j += 4) {
          rgba[j] = image.data[i];
          rgba[j + 1] = image.data[i + 1];
          rgba[j + 2] = image.data[i + 2];
          rgba[j + 3] = 255;
        }
        doc.post({
          type: 'init',
          fileName: doc.fileName,
          width: image.width,
          height: image.height,
          rgba,
          mask: doc.mask.data.slice(),
          settings: this.editorSettings(doc),
          frame,
        });
        doc.post({ type: 'suggestion', suggestion: doc.suggestion });
        if (doc.startingMask) {
          // Offered, not imposed: one undoable edit, and nothing is written until the person saves.
          const start = doc.startingMask;
          doc.startingMask = null;
          if (doc.applyHostEdit('Start from labelme annotations', start.mask)) {
            void vscode.window.showInformationMessage(
              `MaskLoop: started from the labelme annotations in ${path.basename(start.source)}${start.skipped ? ` (${start.skipped} shape(s) skipped, see the output)` : ''}. Save to keep them as this image's mask, or undo.`,
            );
          }
        }
        // The click tool's embedding is computed after the suggestion (the model process takes one request at a time).
        const predicted =
          doc.suggestion.state === 'none' && readSettings(doc.uri).prelabelOnOpen
            ? this.predict(doc)
            : Promise.resolve();
        void predicted.catch(() => undefined).then(() => this.clicks.prepare(doc));
        break;
      }
      case 'edit':
        try {
          doc.applyWebviewEdit(m.label, m.diff);
        } catch (err) {
          this.hub.log(`edit rejected for ${doc.fileName}: ${(err as Error).message}`);
          doc.post({ type: 'replaceMask', mask: doc.mask.data.slice(), reason: 'Resynchronised with the document' });
        }
        break;
      case 'accept':
        this.accept(doc, m.seed);
        break;
      case 'reject':
        this.reject(doc);
        break;
      case 'predict':
        void this.predict(doc);
        break;
      case 'clickPrompt':
        void this.clicks.prompt(doc, m);
        break;
      case 'log':
        this.hub.log(`webview ${doc.fileName}: ${m.level}: ${m.message}`);
        break;
      default:
        assertNever(m);
    }
  }

  /**
   * Moves the active editor to the previous (-1) or next (+1) image of its folder's sequence, in its place:
   * the image's edits are saved first, as VS Code's own editors do when a file is left for the next, and
   * nothing moves when the save fails.
   */
  async stepFrame(step: -1 | 1): Promise<void> {
    const doc = this.active;
    if (!doc?.image) return;
    const frames = await sequenceFrames(doc.uri.fsPath, readSettings(doc.uri).maskPath);
    const index = frames.indexOf(doc.uri.fsPath);
    const target = frames[index + step];
    if (index < 0 || !target) {
      void vscode.window.setStatusBarMessage(
        `MaskLoop: ${doc.fileName} is the ${step < 0 ? 'first' : 'last'} image of its folder`,
        4000,
      );
      return;
    }
    const saved = await vscode.workspace.save(doc.uri);
    if (!saved) {
      void vscode.window.showWarningMessage(
        `MaskLoop: ${doc.fileName} was not saved, so the editor stays on it. Save it (or revert it), then move on.`,
      );
      return;
    }
    await openReplacing(
      vscode.Uri.file(target),
      (input) => input.viewType === EDITOR_VIEW_TYPE && sameFile(input.uri, doc.uri),
    );
  }

  accept(doc: MaskDocument, seed?: { x: number; y: number }): void {
    const problem = doc.accept(seed);
    if (problem) void vscode.window.setStatusBarMessage(`MaskLoop: ${problem}`, 4000);
  }

  reject(doc: MaskDocument): void {
    this.predictions.get(doc)?.controller.abort();
    doc.setSuggestion({ state: 'none', reason: 'Suggestion rejected. Predict again for a new one.' });
  }

  editorSettings(doc: MaskDocument): EditorSettings {
    const s = readSettings(doc.uri);
    return {
      classes: s.classes,
      maskOpacity: s.maskOpacity,
      wandTolerance: s.wandTolerance,
      modelNotice: this.hub.trusted ? null : RESTRICTED_NOTICE,
    };
  }

  /** Asks the model process for a suggestion; painting goes on meanwhile, and a newer request wins. */
  async predict(doc: MaskDocument): Promise<void> {
    if (!doc.image) return;
    this.predictions.get(doc)?.controller.abort();
    if (!this.hub.trusted) {
      doc.setSuggestion({ state: 'none', reason: RESTRICTED_NOTICE });
      return;
    }
    const settings = readSettings(doc.uri);
    const job: Prediction = { controller: new AbortController(), serial: ++this.predictionSerial };
    this.predictions.set(doc, job);
    const neighbours = settings.followNeighbours
      ? await reviewedNeighbours(doc.uri.fsPath, settings.maskPath, workspaceRootFor(doc.uri))
      : [];
    if (this.predictions.get(doc) !== job) return;
    const hasModel = this.hub.hasModel(settings.modelFolder);
    if (!hasModel && neighbours.length === 0) {
      this.predictions.delete(doc);
      doc.setSuggestion({
        state: 'none',
        reason: `No model yet in ${path.relative(workspaceRootFor(doc.uri), settings.modelFolder) || settings.modelFolder}: save corrected masks, then run "MaskLoop: Fine-tune Model on Corrected Masks".${settings.followNeighbours ? ' Until then a frame whose neighbour has a saved mask follows it.' : ''}`,
      });
      return;
    }
    doc.setSuggestion({
      state: 'pending',
      message: hasModel ? 'The model is predicting…' : 'Following the neighbouring frame…',
    });
    // The quick suggestion shown while the refined one is worked out; the mask's change count when it was shown.
    let quick: { shown: ReadySuggestion; changes: number } | null = null;
    const ask = (refs: typeof neighbours) =>
      this.hub.request(
        'predict',
        {
          modelDir: settings.modelFolder,
          image: doc.uri.fsPath,
          neighbours: refs.length > 0 ? refs : undefined,
          // Before any model exists, the neighbour's mask is carried alone, with these classes.
          ...(hasModel ? {} : { classes: { classes: settings.classes } }),
        },
        {
          signal: job.controller.signal,
          onProgress: (e) => {
            if (this.predictions.get(doc) !== job || quick) return;
            const message = pendingMessage(e, neighbours[0]?.image);
            if (message) doc.setSuggestion({ state: 'pending', message });
          },
        },
      );
    try {
      if (neighbours.length > QUICK_NEIGHBOURS) {
        // A third saved frame and more teach the sequence head, whose fit takes seconds: the two nearest frames'
        // suggestion (the fusion alone) comes in under a second and is shown meanwhile.
        const q = await ask(neighbours.slice(0, QUICK_NEIGHBOURS));
        if (this.predictions.get(doc) !== job) return;
        const shown: ReadySuggestion = {
          ...this.readySuggestion(doc, q, settings.modelFolder),
          refining: true,
        };
        doc.setSuggestion(shown);
        quick = { shown, changes: doc.changeCount };
      }
      const r = await ask(neighbours);
      if (this.predictions.get(doc) !== job) return;
      if (quick && (doc.suggestion !== quick.shown || doc.changeCount !== quick.changes)) {
        // The person took up or corrected the quick suggestion meanwhile: it stays, and is no longer refining.
        this.settleQuick(doc, quick.shown);
        this.hub.log(
          `${doc.fileName}: the mask or its suggestion changed while the suggestion was refined: not replaced`,
        );
        return;
      }
      doc.setSuggestion(this.readySuggestion(doc, r, settings.modelFolder));
      if (r.followed?.kind === 'skipped')
        this.hub.log(`${doc.fileName}: no neighbouring frame followed: ${r.followed.reason}`);
    } catch (err) {
      if (this.predictions.get(doc) !== job) return;
      if (quick) {
        // The quick suggestion stays: the refinement failed or was cancelled.
        this.settleQuick(doc, quick.shown);
        if (!(err instanceof ModelRequestError && err.kind === 'cancelled'))
          this.hub.log(`${doc.fileName}: refining the suggestion failed: ${(err as Error).message}`);
        return;
      }
      if (err instanceof ModelRequestError && err.kind === 'cancelled') return;
      doc.setSuggestion({ state: 'error', message: (err as Error).message });
    } finally {
      if (this.predictions.get(doc) === job) this.predictions.delete(doc);
    }
  }

  /** A predict result as the document's ready suggestion (checked against the image's size). */
  private readySuggestion(doc: MaskDocument, r: RequestMap['predict']['result'], modelFolder: string): ReadySuggestion {
    this.hub.noteVersion(modelFolder, r.modelVersion);
    if (!doc.image || r.width !== doc.image.width || r.height !== doc.image.height)
      throw new Error(`prediction is ${r.width}x${r.height}, image ${doc.image?.width}x${doc.image?.height}`);
    return {
      state: 'ready',
      modelVersion: r.modelVersion,
      trained: r.trained,
      classMap: r.classMap,
      confidence: r.confidence,
      follows: r.followed?.kind === 'followed' ? path.basename(r.followed.image) : undefined,
      learnedPairs: r.followed?.kind === 'followed' ? r.followed.learnedPairs : undefined,
    };
  }

  /** The quick suggestion, if still shown, without its "refining" note. */
  private settleQuick(doc: MaskDocument, shown: ReadySuggestion): void {
    if (doc.suggestion === shown) doc.setSuggestion({ ...shown, refining: false });
  }

  async saveCustomDocument(doc: MaskDocument): Promise<void> {
    const created = !fs.existsSync(doc.maskFile);
    await doc.save();
    void this.reminder
      .maskSaved(created, doc.uri)
      .catch((err: unknown) => this.hub.log(`fine-tune reminder: ${String(err)}`));
  }

  saveCustomDocumentAs(doc: MaskDocument, destination: vscode.Uri): Thenable<void> {
    return doc.saveAs(destination);
  }

  revertCustomDocument(doc: MaskDocument): Thenable<void> {
    return doc.revert();
  }

  async backupCustomDocument(
    doc: MaskDocument,
    context: vscode.CustomDocumentBackupContext,
  ): Promise<vscode.CustomDocumentBackup> {
    this.hub.log(`backing up unsaved edits of ${doc.fileName} to ${context.destination.toString()}`);
    const backup = await doc.backup(context.destination);
    this.hub.log(`backed up unsaved edits of ${doc.fileName} to ${context.destination.toString()}`);
    return backup;
  }
}

function sameFile(a: vscode.Uri, b: vscode.Uri): boolean {
  return a.scheme === b.scheme && a.fsPath === b.fsPath;
}

/**
 * Opens `target` in the mask editor in the active tab group and closes the tab it replaces there (the first
 * whose input `replaced` matches), as "Reopen Editor With..." and stepping through images do: one tab, not two.
 */
export async function openReplacing(
  target: vscode.Uri,
  replaced: (input: { uri: vscode.Uri; viewType?: string }) => boolean,
): Promise<void> {
  const group = vscode.window.tabGroups.activeTabGroup;
  const column = group.viewColumn;
  const matches = (tab: vscode.Tab): boolean => {
    const input = tab.input;
    if (input instanceof vscode.TabInputCustom) return replaced({ uri: input.uri, viewType: input.viewType });
    if (input instanceof vscode.TabInputText) return replaced({ uri: input.uri });
    return false;
  };
  const old = group.tabs.find((t) => t.isActive && matches(t)) ?? group.tabs.find(matches);
  await vscode.commands.executeCommand('vscode.openWith', target, EDITOR_VIEW_TYPE, {
    viewColumn: column,
    preserveFocus: false,
  });
  if (!old) return;
  // Found again: the tab objects of a group that changed may be new ones.
  const now = vscode.window.tabGroups.all.find((g) => g.viewColumn === column);
  const tab = now?.tabs.find((t) => !t.isActive && matches(t) && t.label === old.label);
  if (tab && !tab.isDirty) await vscode.window.tabGroups.close(tab, true);
}
