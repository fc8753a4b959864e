// The document behind a mask editor: the image, the mask being edited, and the model's suggestion. The host
// owns it; webviews only show it and send edits. Every change is one VS Code edit with undo and redo.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { writeFileAtomic } from '../../io/atomicWrite';
import { errorText } from '../../masks/fsErrors';
import { applyDiff, checkDiff, diffMasks, emptyBox, maskMatchesDiff, type MaskDiff } from '../../masks/maskDiff';
import { emptyMask, type MaskImage, type RgbImage } from '../../masks/maskImage';
import { encodeMaskPng } from '../../io/maskIO';
import { labelRegion, paintSelection, type Point } from '../../masks/rasterTools';
import type { HostToWebview, SuggestionState } from '../../protocol/editorProtocol';
import type { ClassInfo } from '../../masks/classList';
import { labelmeBeside, readMaskFile, sha, suggestionFile, type StartingMask } from './maskSources';
import { EditHistory } from './editHistory';
import { loadMask, type MaskLoadOptions } from './maskLoad';

export interface MaskDocumentOptions extends MaskLoadOptions {
  /** The class palette, to read a labelme JSON beside the image when no mask exists. */
  classes: ClassInfo[];
}

export class MaskDocument implements vscode.CustomDocument {
  private readonly changed = new vscode.EventEmitter<vscode.CustomDocumentEditEvent<MaskDocument>>();
  private readonly toViews = new vscode.EventEmitter<HostToWebview>();
  private readonly disposed = new vscode.EventEmitter<void>();
  /** VS Code listens here for undoable edits. */
  readonly onDidChange = this.changed.event;
  /** Webviews of this document listen here. */
  readonly onDidUpdateViews = this.toViews.event;
  readonly onDidDispose = this.disposed.event;

  suggestion: SuggestionState = { state: 'none', reason: 'No suggestion yet.' };
  /** A starting mask offered from a labelme JSON beside the image (applied as one undoable edit once shown). */
  startingMask: StartingMask | null = null;
  private readonly history = new EditHistory();
  /** Counts every change of the mask (edits, undos, redos, reverts, reloads): whether it changed since a moment. */
  private changes = 0;
  /** Hash of the mask bytes last read from or written to disk: our own saves do not count as outside changes. */
  private diskHash: string | null = null;

  private constructor(
    readonly uri: vscode.Uri,
    readonly maskFile: string,
    readonly image: RgbImage | null,
    readonly loadError: string | null,
    public mask: MaskImage,
    private restoredFromBackup: boolean,
  ) {}

  /** A document that shows only why it cannot be edited. */
  static failed(uri: vscode.Uri, reason: string): MaskDocument {
    return new MaskDocument(uri, '', null, reason, emptyMask(1, 1), false);
  }

  static async open(
    uri: vscode.Uri,
    backupId: string | undefined,
    options: MaskDocumentOptions,
  ): Promise<MaskDocument> {
    const loaded = await loadMask(uri, backupId, options);
    if (!loaded.ok) return new MaskDocument(uri, options.maskFile, null, loaded.reason, emptyMask(1, 1), false);
    const { image, restored } = loaded;
    const doc = new MaskDocument(uri, options.maskFile, image, null, loaded.mask, restored);
    doc.diskHash = loaded.diskHash;
    if (!loaded.onDisk && !restored) doc.startingMask = await labelmeBeside(uri.fsPath, image, options.classes);
    doc.suggestion = (await suggestionFile(options.maskFile, image)) ?? doc.suggestion;
    return doc;
  }

  /** A number that grows with every change of the mask (an edit, an undo, a redo, a revert or a reload). */
  get changeCount(): number {
    return this.changes;
  }

  get isDirty(): boolean {
    return this.restoredFromBackup || this.history.dirty;
  }

  get fileName(): string {
    return path.basename(this.uri.fsPath);
  }

  post(message: HostToWebview): void {
    this.toViews.fire(message);
  }

  /** An edit made in a webview. Returns false (and resyncs the webviews) if it no longer fits the mask. */
  applyWebviewEdit(label: string, diff: MaskDiff): boolean {
    checkDiff(this.mask, diff);
    if (!maskMatchesDiff(this.mask, diff, 'before')) {
      // The webview painted over a state the host has since changed (an accept or undo crossed the edit).
      this.post({ type: 'replaceMask', mask: this.mask.data.slice(), reason: 'Resynchronised with the document' });
      return false;
    }
    applyDiff(this.mask, diff, 'after');
    this.record(label, diff);
    return true;
  }

  /** An edit made by the host (accept, reload): applied here and sent to the webviews. */
  applyHostEdit(label: string, after: MaskImage): boolean {
    const diff = diffMasks(this.mask, after);
    if (!diff) return false;
    applyDiff(this.mask, diff, 'after');
    this.post({ type: 'applyDiff', diff, side: 'after' });
    this.record(label, diff);
    return true;
  }

  private record(label: string, diff: MaskDiff): void {
    const edit = this.history.push();
    this.changes++;
    this.changed.fire({
      document: this,
      label,
      undo: () => {
        applyDiff(this.mask, diff, 'before');
        this.history.undone(edit);
        this.changes++;
        this.post({ type: 'applyDiff', diff, side: 'before' });
      },
      redo: () => {
        applyDiff(this.mask, diff, 'after');
        this.history.redone(edit);
        this.changes++;
        this.post({ type: 'applyDiff', diff, side: 'after' });
      },
    });
  }

  /** Accept the whole suggestion, or only the connected suggested region under `seed`. */
  accept(seed?: Point): string {
    const s = this.suggestion;
    if (s.state !== 'ready') return 'There is no suggestion to accept.';
    const labels: MaskImage = { width: this.mask.width, height: this.mask.height, data: s.classMap };
    const after: MaskImage = { ...this.mask, data: this.mask.data.slice() };
    if (seed) {
      const region = labelRegion(labels, seed);
      if (region.count === 0) return 'Alt+click inside the image to accept one region.';
      paintSelection(after, region, labels, emptyBox());
    } else {
      after.data.set(s.classMap);
    }
    return this.applyHostEdit(seed ? 'Accept suggested region' : 'Accept suggestion', after)
      ? ''
      : 'The mask already equals the suggestion there.';
  }

  setSuggestion(s: SuggestionState): void {
    this.suggestion = s;
    this.post({ type: 'suggestion', suggestion: s });
  }

  async save(): Promise<void> {
    await this.writeTo(this.maskFile);
    this.history.markSaved();
    this.restoredFromBackup = false;
    this.post({ type: 'saved', maskFile: this.maskFile });
  }

  async saveAs(target: vscode.Uri): Promise<void> {
    if (!target.fsPath.toLowerCase().endsWith('.png'))
      throw new Error(`a mask is saved as a PNG; ${target.fsPath} is not a .png file`);
    await writeFileAtomic(target.fsPath, encodeMaskPng(this.mask));
  }

  private async writeTo(file: string): Promise<void> {
    const bytes = encodeMaskPng(this.mask);
    const before = this.diskHash;
    this.diskHash = sha(bytes);
    try {
      await fs.promises.mkdir(path.dirname(file), { recursive: true });
      await writeFileAtomic(file, bytes);
    } catch (err) {
      // The mask on disk is as it was (atomic write) and the edits stay unsaved; VS Code shows this text.
      this.diskHash = before;
      throw new Error(errorText(err));
    }
  }

  /** Back to the mask on disk (or empty if none was saved). */
  async revert(): Promise<void> {
    if (!this.image) return;
    const fromDisk = await readMaskFile(this.maskFile);
    const mask =
      fromDisk && fromDisk.mask.width === this.image.width && fromDisk.mask.height === this.image.height
        ? fromDisk.mask
        : emptyMask(this.image.width, this.image.height);
    this.diskHash = fromDisk?.hash ?? null;
    this.mask = mask;
    this.changes++;
    this.history.markSaved();
    this.restoredFromBackup = false;
    this.post({ type: 'replaceMask', mask: mask.data.slice(), reason: 'Reverted to the saved mask' });
  }

  /** Hot exit: the current mask, written atomically to VS Code's backup location. */
  async backup(destination: vscode.Uri): Promise<vscode.CustomDocumentBackup> {
    const bytes = encodeMaskPng(this.mask);
    if (destination.scheme === 'file') {
      await fs.promises.mkdir(path.dirname(destination.fsPath), { recursive: true });
      await writeFileAtomic(destination.fsPath, bytes);
    } else {
      await vscode.workspace.fs.writeFile(destination, bytes);
    }
    return {
      id: destination.toString(),
      delete: () => void Promise.resolve(vscode.workspace.fs.delete(destination)).catch(() => undefined),
    };
  }

  /**
   * The mask file changed on disk. Our own saves are recognised by their hash. A clean document reloads; a
   * dirty one asks first and, if told to, reloads as one undoable edit, so nothing painted is lost.
   */
  async onDiskChange(askReload: () => Promise<boolean>): Promise<void> {
    if (!this.image) return;
    const fromDisk = await readMaskFile(this.maskFile).catch(() => null);
    if ((fromDisk?.hash ?? null) === this.diskHash) return;
    if (fromDisk && (fromDisk.mask.width !== this.image.width || fromDisk.mask.height !== this.image.height)) return;
    const next = fromDisk?.mask ?? emptyMask(this.image.width, this.image.height);
    if (!this.isDirty) {
      this.diskHash = fromDisk?.hash ?? null;
      this.mask = next;
      this.changes++;
      this.post({
        type: 'replaceMask',
        mask: next.data.slice(),
        reason: `${path.basename(this.maskFile)} changed on disk: reloaded`,
      });
      return;
    }
    if (await askReload()) {
      this.diskHash = fromDisk?.hash ?? null;
      this.applyHostEdit('Reload mask from disk', next);
    }
  }

  dispose(): void {
    this.disposed.fire();
    this.changed.dispose();
    this.toViews.dispose();
    this.disposed.dispose();
  }
}
