// The model process: serves the engine over the typed protocol, one request at a time. A native crash
// or out-of-memory here kills only this process; the client reports it and starts a fresh one.
import { isBackendChoice } from '../protocol/settings';
import { CancelledError } from '../protocol/errors';
import { ModelService, type CallContext } from './modelService';
import { ClickService } from './clickService';
import { ModelStoreError } from '../engine/store/modelStore';
import { describeFsError, fsErrorCode } from '../masks/fsErrors';
import { InputError } from '../masks/inputError';
import type {
  ErrorKind,
  HostMessage,
  ModelMessage,
  ModelRequest,
  RequestMap,
  RequestType,
} from '../protocol/modelProtocol';

const send = (msg: ModelMessage): void => {
  process.send?.(msg);
};

const choice = process.env.MASKLOOP_BACKEND ?? 'auto';
if (!isBackendChoice(choice)) {
  console.error(`MASKLOOP_BACKEND=${choice} is not a backend (auto, tensorflow-gpu, tensorflow, wasm, cpu)`);
  process.exit(2);
}
const clicks = new ClickService();
const service = new ModelService(choice, clicks);
const queue: ModelRequest[] = [];
const controllers = new Map<number, AbortController>();
let busy = false;

function dispatch(req: ModelRequest, ctx: CallContext): Promise<RequestMap[RequestType]['result']> {
  switch (req.type) {
    case 'info':
      return service.info();
    case 'doctor':
      return service.doctor(req.params);
    case 'describe':
      return service.describe(req.params);
    case 'predict':
      return service.predict(req.params, ctx);
    case 'evaluate':
      return service.evaluate(req.params, ctx);
    case 'fineTune':
      return service.fineTune(req.params, ctx);
    case 'versions':
      return service.versions(req.params);
    case 'rollback':
      return service.rollback(req.params);
    case 'bench':
      return service.bench(req.params, ctx);
    case 'clickCheck':
      return clicks.check(req.params);
    case 'clickPrepare':
      return clicks.prepare(req.params, ctx);
    case 'clickSegment':
      return clicks.segment(req.params, ctx);
    default: {
      const never: never = req;
      throw new Error(`unknown request ${JSON.stringify(never)}`);
    }
  }
}

function classify(err: unknown, signal: AbortSignal): ErrorKind {
  if (err instanceof CancelledError || signal.aborted) return 'cancelled';
  if (err instanceof InputError || fsErrorCode(err)) return 'input';
  if (err instanceof ModelStoreError) return 'model';
  return 'internal';
}

async function pump(): Promise<void> {
  if (busy) return;
  busy = true;
  try {
    for (let req = queue.shift(); req; req = queue.shift()) {
      const controller = controllers.get(req.id) ?? new AbortController();
      controllers.set(req.id, controller);
      const id = req.id;
      try {
        if (controller.signal.aborted) throw new CancelledError();
        const result = await dispatch(req, {
          signal: controller.signal,
          progress: (event) => send({ kind: 'progress', id, event }),
        });
        send({ kind: 'result', id, result });
      } catch (err) {
        const errorKind = classify(err, controller.signal);
        const message =
          errorKind === 'cancelled'
            ? 'cancelled'
            : (describeFsError(err) ??
              (err instanceof Error
                ? errorKind === 'internal'
                  ? (err.stack ?? err.message)
                  : err.message
                : String(err)));
        send({ kind: 'error', id, errorKind, message });
      } finally {
        controllers.delete(id);
      }
    }
  } finally {
    busy = false;
  }
}

process.on('message', (msg: HostMessage) => {
  switch (msg.kind) {
    case 'request':
      controllers.set(msg.id, new AbortController());
      queue.push(msg);
      void pump();
      break;
    case 'cancel':
      controllers.get(msg.id)?.abort();
      break;
    default: {
      const never: never = msg;
      send({ kind: 'log', message: `ignored unknown message ${JSON.stringify(never)}` });
    }
  }
});
process.on('disconnect', () => process.exit(0));
send({ kind: 'ready', pid: process.pid });
