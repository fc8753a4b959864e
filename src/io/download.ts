// Downloading a pinned file: into NAME.part beside the target (never taken for the file itself), resumed from
// where a cancelled or broken download stopped (HTTP Range), checked against its size and SHA-256, and only then
// renamed into place. A failed check deletes the part; a cancel or a broken connection keeps it for next time.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancelledError } from '../protocol/errors';
import type { CatalogueModel } from '../protocol/clickCatalogue';

export interface PinnedFile {
  url: string;
  size: number;
  sha256: string;
}

export interface DownloadHooks {
  signal?: AbortSignal;
  /** Bytes on disk so far (resumed ones included) and the file's size. */
  onProgress?: (received: number, total: number) => void;
}

export class DownloadError extends Error {}

/** Where a download in progress is kept. */
export const partFile = (target: string): string => `${target}.part`;

async function sha256Of(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    if (signal?.aborted) throw new CancelledError();
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** Whether `target` is already the pinned file (its size and SHA-256). */
export async function isPinnedFile(target: string, file: PinnedFile, signal?: AbortSignal): Promise<boolean> {
  try {
    if ((await fs.promises.stat(target)).size !== file.size) return false;
  } catch {
    return false;
  }
  return (await sha256Of(target, signal)) === file.sha256;
}

/**
 * Downloads `file` to `target`. Returns 'present' when the target already is that file, 'downloaded'
 * otherwise. Throws CancelledError on a cancel (the part stays), DownloadError with a sentence a person can
 * act on otherwise.
 */
export async function downloadPinned(
  file: PinnedFile,
  target: string,
  hooks: DownloadHooks = {},
): Promise<'present' | 'downloaded'> {
  const name = path.basename(target);
  if (await isPinnedFile(target, file, hooks.signal)) return 'present';
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  const part = partFile(target);
  let have = await fs.promises.stat(part).then(
    (s) => s.size,
    () => 0,
  );
  if (have > file.size) {
    await fs.promises.rm(part, { force: true });
    have = 0;
  }
  if (have < file.size) {
    let response: Response;
    try {
      response = await fetch(file.url, {
        headers: have > 0 ? { Range: `bytes=${have}-` } : {},
        redirect: 'follow',
        signal: hooks.signal,
      });
    } catch (err) {
      if (hooks.signal?.aborted) throw new CancelledError();
      throw new DownloadError(
        `${name} could not be downloaded from ${file.url} (${(err as Error).message}); is this machine online?`,
      );
    }
    if (response.status === 200)
      have = 0; // the server sent the whole file: start over
    else if (response.status === 206) {
      const range = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
      if (!range || Number(range[1]) !== have) {
        await response.body?.cancel();
        await fs.promises.rm(part, { force: true });
        throw new DownloadError(
          `the server resumed ${name} at the wrong place; the partial file was removed: try again`,
        );
      }
    } else {
      await response.body?.cancel();
      throw new DownloadError(`the server refused ${name} (HTTP ${response.status} from ${file.url})`);
    }
    const out = await fs.promises.open(part, have > 0 ? 'a' : 'w');
    try {
      hooks.onProgress?.(have, file.size);
      if (!response.body) throw new DownloadError(`the server sent no content for ${name}`);
      const reader = response.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (hooks.signal?.aborted) throw new CancelledError();
          await out.write(value);
          have += value.byteLength;
          if (have > file.size) break;
          hooks.onProgress?.(have, file.size);
        }
      } finally {
        await reader.cancel().catch(() => undefined);
      }
      await out.sync();
    } catch (err) {
      if (err instanceof CancelledError || hooks.signal?.aborted) throw new CancelledError();
      if (err instanceof DownloadError) throw err;
      throw new DownloadError(
        `the download of ${name} broke off at ${have} of ${file.size} bytes (${(err as Error).message}); try again to resume it`,
      );
    } finally {
      await out.close();
    }
  }
  const size = (await fs.promises.stat(part)).size;
  if (size < file.size)
    throw new DownloadError(`${name} arrived incomplete (${size} of ${file.size} bytes); try again to resume it`);
  if (size > file.size || (await sha256Of(part, hooks.signal)) !== file.sha256) {
    await fs.promises.rm(part, { force: true });
    throw new DownloadError(
      `${name} arrived damaged (its ${size > file.size ? 'size' : 'SHA-256'} does not match the published one) and was deleted; try again`,
    );
  }
  await fs.promises.rename(part, target);
  return 'downloaded';
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/**
 * Downloads a listed click-segmentation model's two files into `dir/<id>/`; returns the encoder's path.
 * `progress` gets a message and the percentage points done since its last call.
 */
export async function downloadCatalogueModel(
  model: CatalogueModel,
  dir: string,
  progress: (message: string, increment: number) => void,
  signal: AbortSignal,
): Promise<string> {
  const folder = path.join(dir, model.id);
  const total = model.encoder.size + model.decoder.size;
  let reported = 0;
  let before = 0;
  for (const file of [model.encoder, model.decoder]) {
    await downloadPinned(file, path.join(folder, file.name), {
      signal,
      onProgress: (received) => {
        const done = before + received;
        const pct = (100 * done) / total;
        if (pct - reported >= 0.5 || done === total) {
          progress(`${file.name}: ${mib(done)} of ${mib(total)}`, pct - reported);
          reported = pct;
        }
      },
    });
    before += file.size;
    // A file already there reports no progress of its own.
    const pct = (100 * before) / total;
    if (pct > reported) {
      progress(`${file.name}: ${mib(before)} of ${mib(total)}`, pct - reported);
      reported = pct;
    }
  }
  return path.join(folder, model.encoder.name);
}
