import * as fs from 'node:fs';
import * as path from 'node:path';
import { stableStringify } from '../masks/stableJson';

let counter = 0;

/** A temp name beside the target, unique per process and call, so a rename is atomic on the same filesystem. */
export function tempPathFor(target: string): string {
  counter += 1;
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${counter}`);
}

/**
 * Writes a file atomically: temp file, fsync, rename over the target, fsync the folder. A crash or a
 * kill at any moment leaves either the old file or the new one, never a torn one.
 */
export async function writeFileAtomic(target: string, data: Uint8Array | string): Promise<void> {
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  try {
    const handle = await fs.promises.open(tmp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(tmp, target);
  } catch (err) {
    // A full disk, a read-only folder or a folder at the target: the old file stays, and so must no temp file.
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await syncDir(path.dirname(target));
}

/** Writes JSON with sorted keys and a trailing newline (diff-friendly), atomically. */
export async function writeJsonAtomic(target: string, value: unknown): Promise<void> {
  await writeFileAtomic(target, stableStringify(value) + '\n');
}

export async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await fs.promises.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  }
}

/**
 * Fails now, with the file system's own error, when `dir` (created if missing) cannot take a new file: a
 * read-only folder, a full disk, a file where the folder should be. Leaves nothing behind.
 */
export async function probeWritable(dir: string): Promise<void> {
  await fs.promises.mkdir(dir, { recursive: true });
  const probe = tempPathFor(path.join(dir, 'write-probe'));
  try {
    const handle = await fs.promises.open(probe, 'w');
    try {
      await handle.writeFile('maskloop write probe\n');
    } finally {
      await handle.close();
    }
  } finally {
    await fs.promises.rm(probe, { force: true }).catch(() => undefined);
  }
}
