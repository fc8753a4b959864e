import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { encodeRgbPng } from '../../src/io/imageIO';
import { syntheticSample } from '../../src/synthetic/syntheticShapes';
import { ModelClient, ModelRequestError } from '../../src/modelServer/modelClient';

const serverPath = path.resolve(__dirname, '..', '..', 'dist', 'modelServer.js');

test('a model process that dies mid-prediction is reported, and the next request starts a fresh one', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-client-'));
  const image = path.join(dir, 'big.png');
  fs.writeFileSync(image, await encodeRgbPng(syntheticSample({ width: 1400, height: 1400, seed: 1 }).image));
  const client = new ModelClient({ serverPath, backend: 'wasm' });
  try {
    const modelDir = path.join(dir, 'model');
    const first = await client
      .request(
        'predict',
        { modelDir, image, createIfMissing: true, tileSize: 256 },
        {
          onProgress: (e) => {
            if (e.type === 'tiles' && e.done === 2) process.kill(client.pid as number, 'SIGKILL');
          },
        },
      )
      .then(
        () => 'finished',
        (err: unknown) => err,
      );
    assert.ok(first instanceof ModelRequestError, `expected a crash error, got ${String(first)}`);
    assert.equal(first.kind, 'crashed');
    assert.match(first.message, /model process was killed by SIGKILL during "predict"/);
    assert.equal(client.restarts, 1);
    const again = await client.request('predict', { modelDir, image, tileSize: 1024 });
    assert.equal(again.width, 1400);
    assert.ok(again.classMap instanceof Uint8Array, 'class maps travel as typed arrays');
    assert.ok(again.confidence instanceof Uint8Array);
    // Cancelling a request in flight.
    const ctrl = new AbortController();
    const cancelled = client.request(
      'predict',
      { modelDir, image, tileSize: 256 },
      { signal: ctrl.signal, onProgress: () => ctrl.abort() },
    );
    await assert.rejects(cancelled, (e: ModelRequestError) => e.kind === 'cancelled');
    const info = await client.request('info', {});
    assert.equal(info.backend.backend, 'wasm');
  } finally {
    client.dispose();
  }
});
