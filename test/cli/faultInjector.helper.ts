// Loaded with `node --require` into the CLI and (through NODE_OPTIONS) its model process, by the fault suite
// only. MASKLOOP_TEST_FAULT names one fault, as JSON:
//   { "op": "write" | "open" | "rename" | "mkdir", "match": "substring of the path", "code": "ENOSPC" | ... }
//     the first such call on a matching path fails with that errno error (a full disk, a read-only folder, ...);
//     "write" fails after the file was created, as a disk that fills up mid-write does;
//   { "op": "kill-on-rename" | "kill-on-open", "match": "..." }
//     the process kills itself with SIGKILL at that moment (a crash or power cut at that stage).
// Nothing here is bundled into the product.
import * as fs from 'node:fs';

interface Fault {
  op: 'write' | 'open' | 'rename' | 'mkdir' | 'kill-on-rename' | 'kill-on-open';
  match: string;
  code?: string;
}

const spec = process.env.MASKLOOP_TEST_FAULT;
if (spec) {
  const fault = JSON.parse(spec) as Fault;
  const hits = (p: unknown): boolean => String(p).includes(fault.match);
  const errnoError = (syscall: string, p: unknown): NodeJS.ErrnoException => {
    const err = new Error(`${fault.code}: injected fault, ${syscall} '${String(p)}'`) as NodeJS.ErrnoException;
    err.code = fault.code;
    err.syscall = syscall;
    err.path = String(p);
    return err;
  };
  const promises = fs.promises as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const open = promises.open.bind(fs.promises);
  promises.open = async (...args: unknown[]) => {
    const [file, flags] = args;
    const writing = typeof flags === 'string' && /[wa+]/.test(flags);
    if (writing && hits(file)) {
      if (fault.op === 'kill-on-open') process.kill(process.pid, 'SIGKILL');
      if (fault.op === 'open') throw errnoError('open', file);
      if (fault.op === 'write') {
        const handle = (await open(...args)) as fs.promises.FileHandle;
        handle.writeFile = async () => {
          throw errnoError('write', file);
        };
        return handle;
      }
    }
    return open(...args);
  };
  const rename = promises.rename.bind(fs.promises);
  promises.rename = async (from: unknown, to: unknown) => {
    if (hits(to)) {
      if (fault.op === 'kill-on-rename') process.kill(process.pid, 'SIGKILL');
      if (fault.op === 'rename') throw errnoError('rename', to);
    }
    return rename(from, to);
  };
  const mkdir = promises.mkdir.bind(fs.promises);
  promises.mkdir = async (...args: unknown[]) => {
    if (fault.op === 'mkdir' && hits(args[0])) throw errnoError('mkdir', args[0]);
    return mkdir(...args);
  };
}
