// "Propagate to Next Frames": from a frame with a saved mask, suggestions for the next N unreviewed frames of its
// sequence, each following the frame before it (its mask or, down the chain, its new suggestion) along the optical
// flow, refined by the model when there is one. Each is written as a `*.suggestion.png`, as Pre-label Folder
// writes them: never a mask until a person accepts it in the editor.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { errorText } from '../../masks/fsErrors';
import { FOLLOWS_KEY, MODEL_VERSION_KEY, writeMask } from '../../io/maskIO';
import type { PairRef } from '../../protocol/modelProtocol';
import { ModelRequestError } from '../../modelServer/modelClient';
import { RESTRICTED_NOTICE, type ModelHub } from '../modelHub';
import type { MaskEditorProvider } from '../editor/maskEditorProvider';
import { resolveMaskPath, suggestionPathFor } from '../editor/maskPath';
import { framesAsked, planPropagation, sequenceFrames } from '../editor/sequenceNeighbours';
import { readSettings, workspaceRootFor } from '../settings';

export async function propagateCommand(hub: ModelHub, editors: MaskEditorProvider, uri?: vscode.Uri): Promise<void> {
  if (!hub.trusted) return void vscode.window.showWarningMessage(RESTRICTED_NOTICE);
  const active = editors.activeDocument;
  const target = uri ?? active?.uri;
  if (!target)
    return void vscode.window.showInformationMessage(
      'MaskLoop: open a frame whose mask is saved in the mask editor, then propagate from it.',
    );
  const image = target.fsPath;
  const name = path.basename(image);
  const s = readSettings(target);
  const root = workspaceRootFor(target);
  // The frame's edits are what the next frames follow: saved first, as moving to the next frame does.
  if (active && active.uri.fsPath === image && !(await vscode.workspace.save(active.uri)))
    return void vscode.window.showWarningMessage(`MaskLoop: ${name} was not saved, so nothing was propagated.`);
  const maskOf = (f: string): string => resolveMaskPath(s.maskPath, f, root);
  const frames = await sequenceFrames(image, s.maskPath);
  const start = frames.indexOf(image);
  if (start < 0 || !fs.existsSync(maskOf(image)))
    return void vscode.window.showWarningMessage(
      `MaskLoop: ${name} has no saved mask to propagate. Label it (or accept its suggestion), save, then propagate.`,
    );
  const reviewed = (i: number): boolean => fs.existsSync(maskOf(frames[i]));
  const unreviewedAfter = frames.slice(start + 1).filter((f) => !fs.existsSync(maskOf(f))).length;
  if (unreviewedAfter === 0)
    return void vscode.window.showInformationMessage(`MaskLoop: every frame after ${name} already has a saved mask.`);
  const answer = await vscode.window.showInputBox({
    title: `Propagate from ${name}`,
    prompt: `Suggest how many of the next unreviewed frames (${unreviewedAfter} after ${name})? Each follows the one before it; nothing is saved as a mask.`,
    value: String(Math.min(10, unreviewedAfter)),
    validateInput: (text) => {
      const n = framesAsked(text);
      return typeof n === 'number' ? null : n;
    },
  });
  if (answer === undefined) return;
  const n = framesAsked(answer);
  if (typeof n !== 'number') return;
  const steps = planPropagation(frames.length, start, n, reviewed);
  const hasModel = hub.hasModel(s.modelFolder);
  const ref = (i: number): PairRef => ({
    image: frames[i],
    mask: reviewed(i) ? maskOf(frames[i]) : suggestionPathFor(maskOf(frames[i])),
  });
  let written = 0;
  let failure: string | null = null;
  let cancelled = false;
  await vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: `MaskLoop: propagating from ${name}`,
      cancellable: true,
    },
    async (progress, token) => {
      const controller = new AbortController();
      token.onCancellationRequested(() => controller.abort());
      for (const step of steps) {
        if (token.isCancellationRequested) {
          cancelled = true;
          break;
        }
        const frame = frames[step.frame];
        progress.report({
          increment: 100 / steps.length,
          message: `${path.basename(frame)} (${written + 1}/${steps.length})`,
        });
        try {
          const r = await hub.request(
            'predict',
            {
              modelDir: s.modelFolder,
              image: frame,
              neighbours: [ref(step.follows)],
              ...(step.record ? { trackRecord: [ref(step.record[0]), ref(step.record[1])] as [PairRef, PairRef] } : {}),
              ...(hasModel ? {} : { classes: { classes: s.classes } }),
            },
            { signal: controller.signal },
          );
          if (r.followed?.kind !== 'followed')
            throw new Error(
              `${path.basename(frame)} could not follow ${path.basename(frames[step.follows])}: ${r.followed?.kind === 'skipped' ? r.followed.reason : 'no neighbour'}`,
            );
          await writeMask(
            suggestionPathFor(maskOf(frame)),
            { width: r.width, height: r.height, data: r.classMap },
            { [MODEL_VERSION_KEY]: String(r.modelVersion), [FOLLOWS_KEY]: path.basename(frames[step.follows]) },
          );
          written++;
        } catch (err) {
          if (err instanceof ModelRequestError && err.kind === 'cancelled') {
            cancelled = true;
            break;
          }
          // The frames after it would follow a suggestion that is not there: the chain stops here.
          hub.log(`propagate to ${frame}: ${(err as Error).message}`);
          failure = `${path.basename(frame)}: ${errorText(err)}`;
          break;
        }
      }
    },
  );
  const done = `MaskLoop: wrote ${written} suggestion(s) (*.suggestion.png) following ${name}${cancelled ? '; cancelled' : ''}. Open each frame to accept or correct it.`;
  if (failure) void vscode.window.showWarningMessage(`${done} Stopped at ${failure}`);
  else void vscode.window.showInformationMessage(done);
}
