// What a mask editor opens: the image, and the mask to edit (the saved one, resized or replaced when its size
// differs and the person says so, or the hot-exit backup of unsaved edits), or the reason it cannot be edited.
// The file on disk is never changed here.
import * as vscode from 'vscode';
import { decodeImage } from '../../io/imageIO';
import { decodeMaskPng } from '../../io/maskIO';
import { emptyMask, resizeMaskNearest, type MaskImage, type RgbImage } from '../../masks/maskImage';
import { readMaskFile } from './maskSources';

export interface MaskLoadOptions {
  maskFile: string;
  /** Asked when the saved mask's size differs from the image's. */
  onSizeMismatch: (mask: MaskImage, image: RgbImage) => Promise<'resize' | 'empty' | 'cancel'>;
}

export type LoadedMask =
  | { ok: false; reason: string }
  | {
      ok: true;
      image: RgbImage;
      mask: MaskImage;
      /** The mask came from the backup: the document starts dirty. */
      restored: boolean;
      /** Whether a mask file was found on disk, and the hash of its bytes. */
      onDisk: boolean;
      diskHash: string | null;
    };

export async function loadMask(
  uri: vscode.Uri,
  backupId: string | undefined,
  options: MaskLoadOptions,
): Promise<LoadedMask> {
  let image: RgbImage;
  try {
    if (uri.scheme !== 'file') throw new Error(`only files on disk can be labelled (this one is ${uri.scheme}:)`);
    image = await decodeImage(uri.fsPath);
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  let mask = emptyMask(image.width, image.height);
  let fromDisk: Awaited<ReturnType<typeof readMaskFile>>;
  try {
    fromDisk = await readMaskFile(options.maskFile);
  } catch (err) {
    return {
      ok: false,
      reason: `${(err as Error).message}. The mask file was left untouched; fix or remove it and reopen the image.`,
    };
  }
  if (fromDisk) {
    if (fromDisk.mask.width === image.width && fromDisk.mask.height === image.height) mask = fromDisk.mask;
    else {
      const choice = await options.onSizeMismatch(fromDisk.mask, image);
      if (choice === 'cancel')
        return {
          ok: false,
          reason: `the mask ${options.maskFile} is ${fromDisk.mask.width}x${fromDisk.mask.height} but the image is ${image.width}x${image.height}; it was left untouched`,
        };
      if (choice === 'resize') mask = resizeMaskNearest(fromDisk.mask, image.width, image.height);
    }
  }
  let restored = false;
  if (backupId) {
    // Hot exit: the unsaved mask comes back from the backup, and the document starts dirty.
    // The backup location may be on any file system VS Code serves, so it is read through workspace.fs.
    const backupUri = vscode.Uri.parse(backupId);
    try {
      const backup = decodeMaskPng(await vscode.workspace.fs.readFile(backupUri), backupUri.toString());
      if (backup.width === image.width && backup.height === image.height) {
        mask = backup;
        restored = true;
      }
    } catch {
      // No readable backup: the saved mask stands.
    }
  }
  return { ok: true, image, mask, restored, onDisk: fromDisk !== null, diskHash: fromDisk?.hash ?? null };
}
