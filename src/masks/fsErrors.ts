// Ordinary file-system conditions (a read-only folder, a full disk, a file where a folder is expected) are the
// person's to fix, not bugs: they become one-line messages that name the path and say what to do, never a
// stack trace. Used by the CLI, the model process and the extension alike.

const ADVICE: Record<string, string> = {
  EACCES: 'permission denied: make it writable (or readable) for you, or choose another place',
  EPERM: 'operation not permitted: make it writable for you, or choose another place',
  EROFS: 'the file system is read-only: choose a place on a writable disk',
  ENOSPC: 'the disk is full: free some space, then run it again (nothing that existed was changed)',
  EDQUOT: 'the disk quota is used up: free some space, then run it again (nothing that existed was changed)',
  EEXIST: 'a file is in the way where a folder is needed: move or rename it',
  ENOTDIR: 'a file is in the way where a folder is needed: move or rename it',
  EISDIR: 'a folder is in the way where a file is needed: move or rename it, or choose another name',
  ENOENT: 'no such file or folder: check the path',
  EMFILE: 'too many files open at once: close some programs, or raise the limit (ulimit -n), then run it again',
  ENAMETOOLONG: 'the path is too long: choose a shorter one',
  ELOOP: 'too many symbolic links in the path: check the path',
};

/** The Node error code of a file-system error this module can explain, or undefined. */
export function fsErrorCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && code in ADVICE ? code : undefined;
}

/**
 * One line for an ordinary file-system error: the path Node reports (the destination of a rename or copy when
 * there is one), what is wrong and what to do; undefined when `err` is not such an error.
 */
export function describeFsError(err: unknown): string | undefined {
  const code = fsErrorCode(err);
  if (!code) return undefined;
  const e = err as NodeJS.ErrnoException & { dest?: string };
  const where = e.dest ?? e.path;
  return `${where ?? 'a file'}: ${ADVICE[code]} (${code}${e.syscall ? ` on ${e.syscall}` : ''})`;
}

/**
 * The text a person is shown for an error: the file-system explanation where there is one, else the message's
 * first line (a model-process bug arrives with its stack trace, which belongs in the log, not a notification).
 */
export function errorText(err: unknown): string {
  return (
    describeFsError(err) ?? (err instanceof Error ? err.message : String(err)).split('\n')[0].replace(/^\w*Error: /, '')
  );
}
