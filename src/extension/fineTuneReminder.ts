// The reminder to fine-tune: when a save brings the workspace's corrected masks to a count the rule says is due
// (engine/training/fineTuneRule.ts: 2, then every 4th), the person is asked once whether to fine-tune now. A
// first fine-tune on two masks is what cut the real sets' corrections most (the rule's file says by how much).
import * as vscode from 'vscode';
import { lastDueWithin } from '../engine/training/fineTuneRule';
import { findWorkspaceImages } from './commands/workspaceMasks';
import type { ModelHub } from './modelHub';

export class FineTuneReminder {
  /** Counts already asked about in this window, so a count is asked about once. */
  private readonly asked = new Set<number>();
  /** The count of corrected masks at the last save seen (none yet: one less than the first count seen). */
  private seen: number | undefined;

  constructor(private readonly hub: ModelHub) {}

  /** After a mask was saved; `created`: that save wrote a mask where there was none (a newly corrected image). */
  async maskSaved(created: boolean): Promise<void> {
    if (!created || !this.hub.trusted) return;
    if (!vscode.workspace.getConfiguration('maskloop').get<boolean>('fineTune.remind', true)) return;
    const { reviewed } = await findWorkspaceImages();
    const n = reviewed.length;
    const from = this.seen ?? n - 1;
    this.seen = Math.max(n, this.seen ?? 0);
    const due = lastDueWithin(from, n);
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
