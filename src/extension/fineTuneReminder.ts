// The reminder to fine-tune: when a save brings the workspace's corrected masks to a count the rule says is due
// (engine/training/fineTuneRule.ts: frames of a sequence 2, then every 4th; unrelated images, with
// `maskloop.followNeighbours` off, every 4th), the person is asked once whether to fine-tune now. A first
// fine-tune on two frames is what cut the real sets' corrections most; on unrelated images it cost (the rule's
// file says by how much).
import * as vscode from 'vscode';
import { fineTuneRuleFor, lastDueWithin } from '../engine/training/fineTuneRule';
import { findWorkspaceImages } from './commands/workspaceMasks';
import type { ModelHub } from './modelHub';

export class FineTuneReminder {
  /** Counts already asked about in this window, so a count is asked about once. */
  private readonly asked = new Set<number>();
  /** The count of corrected masks at the last save seen (none yet: one less than the first count seen). */
  private seen: number | undefined;

  constructor(private readonly hub: ModelHub) {}

  /**
   * After a mask was saved; `created`: that save wrote a mask where there was none (a newly corrected image);
   * `image`: the image whose mask it was (its folder's settings say whether the images are frames of a sequence).
   */
  async maskSaved(created: boolean, image: vscode.Uri): Promise<void> {
    if (!created || !this.hub.trusted) return;
    const config = vscode.workspace.getConfiguration('maskloop', image);
    if (!config.get<boolean>('fineTune.remind', true)) return;
    const rule = fineTuneRuleFor(config.get<boolean>('followNeighbours', true));
    const { reviewed } = await findWorkspaceImages();
    const n = reviewed.length;
    const from = this.seen ?? n - 1;
    this.seen = Math.max(n, this.seen ?? 0);
    const due = lastDueWithin(from, n, rule);
    if (due === null || this.asked.has(due)) return;
    this.asked.add(due);
    this.hub.log(`${n} corrected masks in the workspace: a fine-tune is due; asking`);
    const now = 'Fine-tune Now';
    const never = "Don't Remind Me";
    const pick = await vscode.window.showInformationMessage(
      `MaskLoop: ${n} corrected masks. Fine-tune the model on them now? The next suggestions learn from them; you can go on labelling meanwhile.`,
      now,
      'Not Now',
      never,
    );
    if (pick === now) await vscode.commands.executeCommand('maskloop.fineTune');
    else if (pick === never)
      await vscode.workspace
        .getConfiguration('maskloop')
        .update('fineTune.remind', false, vscode.ConfigurationTarget.Global);
  }
}
