import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { resolveBackend } from '../../src/engine/backends';
import { ModelStore } from '../../src/engine/store/modelStore';
import { DEFAULT_NETWORK } from '../../src/engine/network/resUNet';

const classes = {
  classes: [
    { index: 0, name: '_background_', color: '#000000' },
    { index: 1, name: 'a', color: '#800000' },
  ],
};
const network = { ...DEFAULT_NETWORK, numClasses: 2, stageWidths: [8, 16] };

test('the store survives a writer killed at any moment: the current model always loads', async () => {
  await resolveBackend('cpu');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-kill-'));
  for (let round = 0; round < 6; round++) {
    const child = fork(path.join(__dirname, 'storeWriter.helper.js'), [dir], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve) => child.once('message', () => resolve()));
    await new Promise((r) => setTimeout(r, 150 + round * 137));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const store = new ModelStore(dir);
    await store.cleanStale();
    const { model, meta } = await store.loadCurrent();
    model.dispose();
    const versions = await store.listVersions();
    assert.ok(versions.includes(meta.version), `current version ${meta.version} is a complete folder`);
    for (const v of versions) (await store.loadVersion(v)).model.dispose();
    assert.ok(
      !fs.readdirSync(path.join(dir, 'versions')).some((n) => n.includes('.tmp-')),
      'stale temporary folders are cleaned',
    );
  }
  const versions = await new ModelStore(dir).listVersions();
  assert.ok(versions.length >= 3, `the writer made progress: ${versions.length} versions`);
});

test('rollback, and clear errors with a way back for corrupt or missing files', async () => {
  await resolveBackend('cpu');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-store-'));
  const store = new ModelStore(dir);
  const { model, meta } = await store.createInitial(network, classes, 'cpu');
  await store.writeVersion(
    model,
    { ...meta, version: 1, parent: 0, trained: true },
    { version: 1, parent: 0, createdAt: '', backend: 'cpu', accepted: true, reason: 't' },
  );
  await store.setCurrent(1);
  assert.equal((await store.currentMeta()).version, 1);
  assert.equal((await store.rollback(0)).version, 0);
  assert.equal((await store.loadCurrent()).meta.version, 0);
  await assert.rejects(store.rollback(7), /no version 7; stored versions: 0, 1/);
  // A truncated weights file: named, with the way back.
  const w1 = path.join(dir, 'versions', '0001', 'weights.bin');
  fs.truncateSync(w1, 100);
  await store.setCurrent(1);
  await assert.rejects(
    store.loadCurrent(),
    (e: Error) =>
      e.message.includes('model.json') && /truncated/.test(e.message) && /maskloop rollback --to N/.test(e.message),
  );
  await assert.rejects(store.rollback(1), /truncated/);
  fs.writeFileSync(path.join(dir, 'model.json'), '{"broken');
  await assert.rejects(store.loadCurrent(), /the model file is corrupt.*maskloop versions/);
  await store.rollback(0);
  assert.equal((await store.loadCurrent()).meta.version, 0);
  fs.rmSync(path.join(dir, 'versions', '0000', 'weights.bin'));
  await assert.rejects(store.loadCurrent(), /weights are missing/);
  model.dispose();
});
