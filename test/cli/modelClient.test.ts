import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { encodeRgbPng } from '../../src/io/imageIO';
import { writeMask } from '../../src/io/maskIO';
import { syntheticSample } from '../../src/synthetic/syntheticShapes';
import {
  MODEL_PROCESS_MALLOC,
  ModelClient,
  ModelRequestError,
  modelProcessEnv,
} from '../../src/modelServer/modelClient';

const serverPath = path.resolve(__dirname, '..', '..', 'dist', 'modelServer.js');

test("the model process gets glibc's malloc settings unless the environment sets them", async () => {
  const env = modelProcessEnv({ PATH: '/bin', MALLOC_TRIM_THRESHOLD_: '1000' }, { MASKLOOP_BACKEND: 'wasm' });
  assert.equal(env.MALLOC_MMAP_THRESHOLD_, String(32 * 1024 * 1024));
  assert.equal(env.MALLOC_TRIM_THRESHOLD_, '1000', "the person's own setting wins");
  assert.equal(env.PATH, '/bin');
  assert.equal(env.MASKLOOP_BACKEND, 'wasm');
  assert.equal(modelProcessEnv({}, { MALLOC_MMAP_THRESHOLD_: '5' }).MALLOC_MMAP_THRESHOLD_, '5');
  // The process the client starts has them (read back where /proc shows a process's environment).
  const client = new ModelClient({ serverPath, backend: 'wasm' });
  try {
    await client.request('info', {});
    const environ = `/proc/${client.pid}/environ`;
    if (fs.existsSync(environ)) {
      const vars = fs.readFileSync(environ, 'latin1').split('\0');
      for (const [name, value] of Object.entries(MODEL_PROCESS_MALLOC))
        if (process.env[name] === undefined) assert.ok(vars.includes(`${name}=${value}`), `${name} in ${environ}`);
    }
  } finally {
    client.dispose();
  }
});

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

test('predict with reviewed neighbours: followed when usable; a neighbour of another size or with an unusable mask is skipped with the reason, never an error', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-client-'));
  const client = new ModelClient({ serverPath, backend: 'wasm' });
  try {
    const frame = (name: string, seed: number, size = 96) => {
      const s = syntheticSample({ width: size, height: size, seed });
      return { name: path.join(dir, `${name}.png`), mask: path.join(dir, `${name}.mask.png`), sample: s };
    };
    const a = frame('f1', 3);
    const b = frame('f2', 3);
    const small = frame('small', 4, 64);
    for (const f of [a, b, small]) {
      fs.writeFileSync(f.name, await encodeRgbPng(f.sample.image));
      await writeMask(f.mask, f.sample.mask);
    }
    const modelDir = path.join(dir, 'model');
    // The same image as its neighbour: carrying is exact, and an untrained model takes the carried mask.
    const followed = await client.request('predict', {
      modelDir,
      image: b.name,
      createIfMissing: true,
      neighbours: [{ image: a.name, mask: a.mask }],
    });
    assert.equal(followed.followed?.kind, 'followed');
    let same = 0;
    for (let i = 0; i < followed.classMap.length; i++) if (followed.classMap[i] === a.sample.mask.data[i]) same++;
    assert.ok(same / followed.classMap.length > 0.97, `${same} pixels follow`);
    const other = await client.request('predict', {
      modelDir,
      image: b.name,
      neighbours: [{ image: small.name, mask: small.mask }],
    });
    assert.equal(other.followed?.kind, 'skipped');
    assert.match(
      other.followed?.kind === 'skipped' ? other.followed.reason : '',
      /small\.png is 64x64, this image 96x96/,
    );
    // A mask of only "ignore" is unusable: the neighbour is skipped and the prediction still comes back.
    await writeMask(a.mask, { width: 96, height: 96, data: new Uint8Array(96 * 96).fill(255) });
    const bad = await client.request('predict', {
      modelDir,
      image: b.name,
      neighbours: [{ image: a.name, mask: a.mask }],
    });
    assert.equal(bad.followed?.kind, 'skipped');
    assert.match(bad.followed?.kind === 'skipped' ? bad.followed.reason : '', /f1\.mask\.png/);
    assert.equal(bad.classMap.length, 96 * 96);
  } finally {
    client.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('before any model, a frame follows its reviewed neighbour with the carried mask alone; a record pair gives the track record', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-client-'));
  const client = new ModelClient({ serverPath, backend: 'wasm' });
  try {
    const s = syntheticSample({ width: 96, height: 96, seed: 5 });
    const file = (name: string) => path.join(dir, name);
    for (const n of ['f1', 'f2', 'f3']) fs.writeFileSync(file(`${n}.png`), await encodeRgbPng(s.image));
    await writeMask(file('f1.mask.png'), s.mask);
    // f2's mask is the truth; f3's "mask" says background everywhere, so carrying it onto f2 is wrong on the object.
    await writeMask(file('f2.mask.png'), s.mask);
    await writeMask(file('f3.mask.png'), { width: 96, height: 96, data: new Uint8Array(96 * 96) });
    const modelDir = file('model');
    const classes = {
      classes: [
        { index: 0, name: '_background_', color: '#000000' },
        { index: 1, name: 'object', color: '#800000' },
      ],
    };
    const r = await client.request('predict', {
      modelDir,
      classes,
      image: file('f2.png'),
      neighbours: [{ image: file('f1.png'), mask: file('f1.mask.png') }],
    });
    assert.equal(r.modelVersion, 0);
    assert.equal(r.trained, false);
    assert.equal(r.followed?.kind, 'followed');
    assert.equal(fs.existsSync(modelDir), false, 'no model folder is written by following');
    let same = 0;
    for (let i = 0; i < r.classMap.length; i++) if (r.classMap[i] === s.mask.data[i]) same++;
    assert.ok(same / r.classMap.length > 0.97, `${same} pixels follow`);
    assert.equal(r.followed?.kind === 'followed' ? r.followed.trackRecordError : 'none', null);
    // The record from a given pair (f3 carried onto f2), not from the neighbours.
    const withRecord = await client.request('predict', {
      modelDir,
      classes,
      image: file('f1.png'),
      neighbours: [{ image: file('f2.png'), mask: file('f2.mask.png') }],
      trackRecord: [
        { image: file('f2.png'), mask: file('f2.mask.png') },
        { image: file('f3.png'), mask: file('f3.mask.png') },
      ],
    });
    const error = withRecord.followed?.kind === 'followed' ? withRecord.followed.trackRecordError : null;
    let object = 0;
    for (const v of s.mask.data) if (v === 1) object++;
    assert.ok(error !== null && Math.abs(error - object / (96 * 96)) < 0.02, `track record error ${error}`);
    // Reviewed neighbours in a row are pairs to learn from (f1 carried onto f2, f0 onto f1): the sequence head is
    // tried on f2 without f2's own pair. Here the frames are one image, so the head and the fusion there differ by
    // a pixel at most; where the head gets fewer pixels wrong, it is fitted again with f2's pair for f3.
    await writeMask(file('f3.mask.png'), s.mask);
    fs.copyFileSync(file('f1.png'), file('f0.png'));
    await writeMask(file('f0.mask.png'), s.mask);
    const run = ['f2', 'f1', 'f0'].map((n) => ({ image: file(`${n}.png`), mask: file(`${n}.mask.png`) }));
    const said: string[] = [];
    const learned = await client.request(
      'predict',
      { modelDir, classes, image: file('f3.png'), neighbours: run },
      { onProgress: (e) => void (e.type === 'prepare' && said.push(e.message)) },
    );
    assert.equal(learned.followed?.kind, 'followed');
    // It says what takes the time: the pair beyond the record pair carried, the heads fitted (the one tried on
    // f2, and the one for f3 exactly when the head was taken).
    const learnedPairs = learned.followed?.kind === 'followed' ? (learned.followed.learnedPairs ?? 0) : 0;
    assert.deepEqual(
      said,
      [
        'carrying f0.mask.png onto f1.png',
        'learning from 2 saved frames',
        ...(learnedPairs > 0 ? [`learning from ${learnedPairs + 1} saved frames`] : []),
      ],
      said.join('; '),
    );
    let right = 0;
    for (let i = 0; i < learned.classMap.length; i++) if (learned.classMap[i] === s.mask.data[i]) right++;
    assert.ok(right / learned.classMap.length > 0.97, `${right} pixels right`);
    // Asked again (the pair's carrying and the head kept), the same suggestion, with nothing to carry or fit.
    said.length = 0;
    const again = await client.request(
      'predict',
      { modelDir, classes, image: file('f3.png'), neighbours: run },
      { onProgress: (e) => void (e.type === 'prepare' && said.push(e.message)) },
    );
    assert.deepEqual(again.classMap, learned.classMap);
    assert.deepEqual(said, []);
    // Without neighbours there is nothing to follow: no model is still an error that says what to do.
    await assert.rejects(client.request('predict', { modelDir, classes, image: file('f1.png') }), /no model here/);
  } finally {
    client.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
