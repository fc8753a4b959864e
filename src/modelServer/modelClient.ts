import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BackendChoice } from '../protocol/settings';
import type {
  ErrorKind,
  HostMessage,
  ModelMessage,
  ProgressEvent,
  RequestMap,
  RequestType,
} from '../protocol/modelProtocol';

export class ModelRequestError extends Error {
  constructor(
    readonly kind: ErrorKind | 'crashed',
    message: string,
  ) {
    super(message);
    this.name = 'ModelRequestError';
  }
}

export interface ClientOptions {
  /** Path of the bundled model process script; default: modelServer.js beside this bundle. */
  serverPath?: string;
  backend?: BackendChoice;
  log?: (line: string) => void;
  /** Extra environment for the model process. */
  env?: NodeJS.ProcessEnv;
}

export interface CallOptions {
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
}

interface Pending {
  type: RequestType;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  onProgress?: (event: ProgressEvent) => void;
}

/**
 * glibc's malloc settings for the model process, unless the environment sets them (other C libraries ignore
 * them). By default glibc serves every block over its mmap threshold (dynamic, 128 KiB to 32 MiB) with its own
 * mapping and returns it on free, so each image-sized buffer the process allocates (onnxruntime's activations
 * in sessions without an arena, typed arrays of probabilities and features) is faulted in page by page and
 * zeroed by the kernel again, run after run. Blocks up to 32 MiB are served from the heap instead, and up to
 * 512 MiB of free heap top is kept for the next ones. On a street fine-tune (2-core VM) the round took 24.7-29.6
 * s against 30.1-34.6 s in alternating runs, at the same peak RSS (docs/benchmarks.md).
 */
export const MODEL_PROCESS_MALLOC: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(32 * 1024 * 1024),
  MALLOC_TRIM_THRESHOLD_: String(512 * 1024 * 1024),
};

/** The model process's environment: the malloc settings above where not set, this process's, then `extra`. */
export function modelProcessEnv(base: NodeJS.ProcessEnv, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...MODEL_PROCESS_MALLOC, ...base, ...extra };
}

function defaultServerPath(): string {
  const beside = path.join(__dirname, 'modelServer.js');
  if (fs.existsSync(beside)) return beside;
  return path.resolve(__dirname, '..', 'dist', 'modelServer.js');
}

/**
 * The one client of the model process, used by the extension and the CLI. Starts the process lazily,
 * queues typed requests, streams progress, forwards cancellation, and when the process dies rejects what
 * was in flight with a clear error and starts a fresh process on the next request.
 */
export class ModelClient {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly options: ClientOptions;
  /** How many times the process has died and been replaced. */
  restarts = 0;

  constructor(options: ClientOptions = {}) {
    this.options = options;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private start(): ChildProcess {
    if (this.child) return this.child;
    const serverPath = this.options.serverPath ?? defaultServerPath();
    const env = modelProcessEnv(process.env, this.options.env);
    if (this.options.backend) env.MASKLOOP_BACKEND = this.options.backend;
    const child = fork(serverPath, [], { serialization: 'advanced', env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    this.child = child;
    const log = this.options.log;
    child.stdout?.on('data', (d: Buffer) => log?.(d.toString().trimEnd()));
    child.stderr?.on('data', (d: Buffer) => log?.(d.toString().trimEnd()));
    child.on('message', (msg: ModelMessage) => this.onMessage(msg));
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      if (this.pending.size > 0) {
        this.restarts++;
        log?.(`model process ${child.pid} ${how}`);
      }
      for (const [id, p] of this.pending) {
        p.reject(
          new ModelRequestError(
            'crashed',
            `the model process ${how} during "${p.type}"; nothing on disk was changed by it, and the next request starts a fresh process`,
          ),
        );
        this.pending.delete(id);
      }
    });
    return child;
  }

  private onMessage(msg: ModelMessage): void {
    switch (msg.kind) {
      case 'ready':
        this.options.log?.(`model process ${msg.pid} ready`);
        break;
      case 'log':
        this.options.log?.(msg.message);
        break;
      case 'progress':
        this.pending.get(msg.id)?.onProgress?.(msg.event);
        break;
      case 'result': {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        p?.resolve(msg.result);
        break;
      }
      case 'error': {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        p?.reject(new ModelRequestError(msg.errorKind, msg.message));
        break;
      }
      default: {
        const never: never = msg;
        this.options.log?.(`unknown message from the model process: ${JSON.stringify(never)}`);
      }
    }
  }

  /** Sends one request and resolves with its typed result. */
  request<K extends RequestType>(
    type: K,
    params: RequestMap[K]['params'],
    call: CallOptions = {},
  ): Promise<RequestMap[K]['result']> {
    const child = this.start();
    const id = this.nextId++;
    return new Promise<RequestMap[K]['result']>((resolve, reject) => {
      if (call.signal?.aborted) {
        reject(new ModelRequestError('cancelled', 'cancelled'));
        return;
      }
      this.pending.set(id, { type, resolve: resolve as (v: unknown) => void, reject, onProgress: call.onProgress });
      call.signal?.addEventListener(
        'abort',
        () => {
          if (this.pending.has(id)) child.send({ kind: 'cancel', id } satisfies HostMessage);
        },
        { once: true },
      );
      child.send({ kind: 'request', id, type, params } as HostMessage);
    });
  }

  /** Stops the model process (pending requests fail). */
  dispose(): void {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null) child.kill();
  }
}
