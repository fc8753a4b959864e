// The editor's click tool, host side: the person's clicks and box go to the model process (click segmentation
// through a SAM-family pair, maskloop.clickModel), and its candidate masks come back to the webview. The image's
// embedding is computed in the background when an editor opens, and cached on disk in the extension's storage.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { clickModelFiles, fileInsideFolders } from '../../io/clickModelFiles';
import { labelRegion } from '../../masks/rasterTools';
import type { ClickModelFiles } from '../../protocol/modelProtocol';
import type { WebviewToHost } from '../../protocol/editorProtocol';
import { errorText } from '../../masks/fsErrors';
import type { ModelHub } from '../modelHub';
import { readSettings } from '../settings';
import type { MaskDocument } from './maskDocument';

export const CLICK_SETUP_HINT = 'Click segmentation is not set up: run "MaskLoop: Set Up Click Segmentation..."';

/** The pair `maskloop.clickModel` names, or why there is none. */
export function configuredClickModel(): ClickModelFiles | { reason: string } {
  const named = vscode.workspace.getConfiguration('maskloop').get<string>('clickModel', '').trim();
  if (!named) return { reason: CLICK_SETUP_HINT };
  try {
    return clickModelFiles(named);
  } catch (err) {
    return { reason: `maskloop.clickModel: ${errorText(err)}` };
  }
}

export class ClickSegmenter {
  /** The prompt in flight per document: a newer prompt cancels it. */
  private readonly inFlight = new Map<MaskDocument, AbortController>();

  constructor(
    private readonly hub: ModelHub,
    private readonly storageDir: string,
  ) {}

  private get cacheDir(): string {
    return path.join(this.storageDir, 'embeddings');
  }

  private target(doc: MaskDocument): { model: ClickModelFiles; image: string; cacheDir: string } | { reason: string } {
    const model = configuredClickModel();
    if ('reason' in model) return model;
    if (!this.hub.trusted) {
      const inside = fileInsideFolders(
        model,
        (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
      );
      if (inside)
        return {
          reason: `Restricted mode: the click model ${path.basename(inside)} lies in this untrusted workspace. Trust the workspace, or keep the model elsewhere ("MaskLoop: Set Up Click Segmentation..." keeps downloads in VS Code's storage).`,
        };
    }
    return { model, image: doc.uri.fsPath, cacheDir: this.cacheDir };
  }

  /** The embedding of the document's image, computed in the background (after the suggestion's prediction). */
  async prepare(doc: MaskDocument): Promise<void> {
    const t = this.target(doc);
    if ('reason' in t) {
      doc.post({ type: 'clickState', click: { state: 'unavailable', reason: t.reason } });
      return;
    }
    doc.post({
      type: 'clickState',
      click: { state: 'preparing', message: `Preparing click segmentation (${path.basename(t.model.encoder)})...` },
    });
    try {
      const r = await this.hub.request('clickPrepare', t);
      this.hub.log(
        `${doc.fileName}: click segmentation ready (${r.layout}, embedding ${r.embedding}, ${r.seconds.toFixed(2)} s)`,
      );
      doc.post({ type: 'clickState', click: { state: 'ready', message: `Ready (${r.layout})` } });
    } catch (err) {
      this.hub.log(`${doc.fileName}: click segmentation failed: ${errorText(err)}`);
      doc.post({ type: 'clickState', click: { state: 'error', message: errorText(err) } });
    }
  }

  async prompt(doc: MaskDocument, m: Extract<WebviewToHost, { type: 'clickPrompt' }>): Promise<void> {
    const t = this.target(doc);
    if ('reason' in t) {
      doc.post({ type: 'clickState', click: { state: 'unavailable', reason: t.reason } });
      return;
    }
    this.inFlight.get(doc)?.abort();
    const controller = new AbortController();
    this.inFlight.set(doc, controller);
    try {
      const region = m.refine ? this.regionUnder(doc, m) : undefined;
      // A first click: the suggestion's region under it, which answers it where the click model agrees on its size.
      const suggested =
        !m.refine && !m.box && !m.continueFrom && m.points.length === 1 && m.points[0].positive
          ? this.regionUnder(doc, m, false)
          : undefined;
      const r = await this.hub.request(
        'clickSegment',
        {
          ...t,
          prompt: {
            points: m.points,
            ...(m.box ? { box: m.box } : {}),
            ...(region ? { region } : {}),
            ...(suggested ? { suggested } : {}),
            ...(m.continueFrom ? { continueFrom: m.continueFrom } : {}),
            ...(vscode.workspace.getConfiguration('maskloop', doc.uri).get<boolean>('clickZoom', true)
              ? {}
              : { zoom: false }),
          },
          // The model's learnt edges for the active class, when a fine-tune fitted them for this click model (not
          // read from an untrusted workspace's model folder).
          ...(this.hub.trusted &&
          vscode.workspace.getConfiguration('maskloop', doc.uri).get<boolean>('clickEdges', true)
            ? { edges: { modelDir: readSettings(doc.uri).modelFolder, classIndex: m.activeClass } }
            : {}),
        },
        { signal: controller.signal },
      );
      doc.post({
        type: 'clickResult',
        seq: m.seq,
        candidates: r.candidates,
        seconds: r.seconds,
        answer: r.answer,
        fromSuggestion: r.fromSuggestion,
      });
    } catch (err) {
      if (controller.signal.aborted) return;
      this.hub.log(`${doc.fileName}: click segmentation failed: ${errorText(err)}`);
      doc.post({ type: 'clickState', click: { state: 'error', message: errorText(err) } });
    } finally {
      if (this.inFlight.get(doc) === controller) this.inFlight.delete(doc);
    }
  }

  /**
   * The region to refine: the connected region of the active class in the mask under the first click, else (or
   * with `fromMask` false, only) the connected region of the suggestion under it; 1 inside. None when neither
   * holds the class there.
   */
  private regionUnder(
    doc: MaskDocument,
    m: Extract<WebviewToHost, { type: 'clickPrompt' }>,
    fromMask = true,
  ): Uint8Array | undefined {
    const seed = m.points[0];
    if (!seed) return undefined;
    const { width, height } = doc.mask;
    const at = Math.floor(seed.y) * width + Math.floor(seed.x);
    const s = doc.suggestion;
    const labels =
      fromMask && doc.mask.data[at] === m.activeClass
        ? doc.mask
        : s.state === 'ready' && s.classMap[at] === m.activeClass
          ? { width, height, data: s.classMap }
          : null;
    if (!labels) return undefined;
    const region = labelRegion(labels, seed);
    return region.count > 0 ? region.inside : undefined;
  }
}
