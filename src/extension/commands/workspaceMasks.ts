// Finds the images of the workspace and their saved (reviewed) masks.
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import { isMaskFile, resolveMaskPath } from '../editor/maskPath';
import { readSettings, workspaceRootFor } from '../settings';
import type { PairRef } from '../../protocol/modelProtocol';

export const IMAGE_GLOB = '**/*.{png,jpg,jpeg,webp,tif,tiff,PNG,JPG,JPEG,WEBP,TIF,TIFF}';
export const EXCLUDE_GLOB = '**/{node_modules,.git,.maskloop}/**';

export interface WorkspaceImages {
  /** Images with a saved mask: the reviewed ones, which fine-tuning learns from. */
  reviewed: PairRef[];
  /** Images without a saved mask. */
  unlabelled: { image: string; mask: string }[];
}

export async function findWorkspaceImages(folder?: vscode.Uri): Promise<WorkspaceImages> {
  const include = folder ? new vscode.RelativePattern(folder, IMAGE_GLOB) : IMAGE_GLOB;
  const files = await vscode.workspace.findFiles(include, EXCLUDE_GLOB);
  const reviewed: PairRef[] = [];
  const unlabelled: { image: string; mask: string }[] = [];
  for (const uri of files.sort((a, b) => a.fsPath.localeCompare(b.fsPath))) {
    const settings = readSettings(uri);
    if (isMaskFile(uri.fsPath, settings.maskPath)) continue;
    let mask: string;
    try {
      mask = resolveMaskPath(settings.maskPath, uri.fsPath, workspaceRootFor(uri));
    } catch {
      continue;
    }
    if (fs.existsSync(mask)) reviewed.push({ image: uri.fsPath, mask });
    else unlabelled.push({ image: uri.fsPath, mask });
  }
  return { reviewed, unlabelled };
}
