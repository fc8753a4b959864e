// Runs the built `maskloop` CLI as a person would, for the CLI suites (bundled into each of them).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';

export const BIN = path.resolve(__dirname, '..', '..', 'bin', 'maskloop.js');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * One `maskloop` command in `cwd`, on the wasm backend unless `env` says otherwise (an `undefined` in `env`
 * removes that variable). A process killed by a signal reports 128 + the signal's number, as a shell does.
 */
export function runCli(
  args: string[],
  o: { cwd: string; env?: Record<string, string | undefined>; timeoutMs?: number },
): CliRun {
  const env: NodeJS.ProcessEnv = { ...process.env, MASKLOOP_BACKEND: 'wasm', ...o.env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: o.cwd,
    encoding: 'utf8',
    env,
    timeout: o.timeoutMs ?? 600_000,
  });
  return {
    code: r.status ?? (r.signal ? 128 + (os.constants.signals[r.signal] ?? 0) : -1),
    stdout: r.stdout,
    stderr: r.stderr,
  };
}

/** The command with --json; it must exit 0, and its stdout is parsed. */
export function jsonCli<T>(args: string[], o: { cwd: string; env?: Record<string, string | undefined> }): T {
  const r = runCli([...args, '--json'], o);
  assert.equal(r.code, 0, `maskloop ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
