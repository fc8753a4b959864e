import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { downloadCatalogueModel, downloadPinned, DownloadError, partFile } from '../../src/io/download';
import { CancelledError } from '../../src/protocol/errors';
import { CLICK_CATALOGUE } from '../../src/protocol/clickCatalogue';

const payload = randomBytes(300_000);
const sha256 = createHash('sha256').update(payload).digest('hex');

interface ServerMode {
  /** Close the connection after this many body bytes. */
  breakAfter?: number;
  /** Answer every request with the whole file (200), ignoring Range. */
  ignoreRange?: boolean;
  status?: number;
}

async function serve(mode: ServerMode): Promise<{ url: string; ranges: string[]; close: () => Promise<void> }> {
  const ranges: string[] = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/moved') {
      res.writeHead(302, { Location: '/file' }).end();
      return;
    }
    if (mode.status) {
      res.writeHead(mode.status).end();
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    ranges.push(req.headers.range ?? '');
    const start = range && !mode.ignoreRange ? Number(range[1]) : 0;
    const body = payload.subarray(start);
    res.writeHead(start > 0 ? 206 : 200, {
      'Content-Length': body.length,
      ...(start > 0 ? { 'Content-Range': `bytes ${start}-${payload.length - 1}/${payload.length}` } : {}),
    });
    if (mode.breakAfter !== undefined) {
      res.write(body.subarray(0, mode.breakAfter), () => setTimeout(() => res.socket?.destroy(), 20));
    } else res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    ranges,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-download-'));
}

test('a pinned file is downloaded through a redirect, checked and renamed into place; again, it is present', async () => {
  const s = await serve({});
  const dir = tmp();
  try {
    const target = path.join(dir, 'm.encoder.onnx');
    const seen: number[] = [];
    const file = { url: `${s.url}/moved`, size: payload.length, sha256 };
    assert.equal(await downloadPinned(file, target, { onProgress: (r) => seen.push(r) }), 'downloaded');
    assert.deepEqual(fs.readFileSync(target), payload);
    assert.equal(seen[seen.length - 1], payload.length);
    assert.ok(!fs.existsSync(partFile(target)));
    assert.equal(await downloadPinned(file, target), 'present');
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a broken connection leaves only the part file; the next try resumes from it with a Range request', async () => {
  const broken = await serve({ breakAfter: 100_000 });
  const dir = tmp();
  const target = path.join(dir, 'm.decoder.onnx');
  try {
    const file = { url: `${broken.url}/file`, size: payload.length, sha256 };
    await assert.rejects(downloadPinned(file, target), DownloadError);
    assert.ok(!fs.existsSync(target), 'nothing that could be taken for the model');
    const kept = fs.statSync(partFile(target)).size;
    assert.ok(kept > 0 && kept < payload.length, `the part holds ${kept} bytes`);
  } finally {
    await broken.close();
  }
  const whole = await serve({});
  try {
    const kept = fs.statSync(partFile(target)).size;
    assert.equal(
      await downloadPinned({ url: `${whole.url}/file`, size: payload.length, sha256 }, target),
      'downloaded',
    );
    assert.deepEqual(whole.ranges, [`bytes=${kept}-`]);
    assert.deepEqual(fs.readFileSync(target), payload);
  } finally {
    await whole.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a server that ignores Range is read from the start; a wrong checksum deletes the part; refusals are named', async () => {
  const s = await serve({ ignoreRange: true });
  const dir = tmp();
  const target = path.join(dir, 'm.encoder.onnx');
  try {
    fs.writeFileSync(partFile(target), payload.subarray(0, 1000));
    assert.equal(await downloadPinned({ url: `${s.url}/file`, size: payload.length, sha256 }, target), 'downloaded');
    assert.deepEqual(fs.readFileSync(target), payload);
    const other = path.join(dir, 'other.encoder.onnx');
    await assert.rejects(
      downloadPinned({ url: `${s.url}/file`, size: payload.length, sha256: '0'.repeat(64) }, other),
      /other\.encoder\.onnx arrived damaged \(its SHA-256 does not match the published one\) and was deleted/,
    );
    assert.ok(!fs.existsSync(other) && !fs.existsSync(partFile(other)));
  } finally {
    await s.close();
  }
  const refusing = await serve({ status: 404 });
  try {
    await assert.rejects(
      downloadPinned({ url: `${refusing.url}/file`, size: 10, sha256 }, path.join(dir, 'x.onnx')),
      /the server refused x\.onnx \(HTTP 404/,
    );
  } finally {
    await refusing.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a cancel stops the download and keeps the part for a resume', async () => {
  const s = await serve({});
  const dir = tmp();
  const target = path.join(dir, 'm.encoder.onnx');
  try {
    const controller = new AbortController();
    await assert.rejects(
      downloadPinned({ url: `${s.url}/file`, size: payload.length, sha256 }, target, {
        signal: controller.signal,
        onProgress: (received) => {
          if (received > 0) controller.abort();
        },
      }),
      CancelledError,
    );
    assert.ok(!fs.existsSync(target));
    assert.ok(fs.existsSync(partFile(target)));
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('every listed model is a pinned encoder/decoder pair named as a pair is found', () => {
  for (const m of CLICK_CATALOGUE) {
    for (const [f, role] of [
      [m.encoder, 'encoder'],
      [m.decoder, 'decoder'],
    ] as const) {
      assert.match(f.sha256, /^[0-9a-f]{64}$/, `${m.id} ${role}`);
      assert.ok(f.size > 0 && f.url.startsWith('https://'));
      assert.ok(f.name.endsWith(`.${role}.onnx`) && f.url.endsWith(f.name));
    }
    assert.equal(m.encoder.name.replace('.encoder.onnx', ''), m.decoder.name.replace('.decoder.onnx', ''));
    assert.match(m.licence, /Apache-2\.0|MIT|BSD/);
  }
});

test('a listed model downloads both files into its own folder, with progress that adds up to 100%', async () => {
  const s = await serve({});
  const dir = tmp();
  try {
    const file = (name: string) => ({ url: `${s.url}/file`, size: payload.length, sha256, name });
    const model = {
      id: 'tiny',
      label: 'Tiny',
      detail: '',
      licence: 'MIT',
      encoder: file('tiny.encoder.onnx'),
      decoder: file('tiny.decoder.onnx'),
    };
    let total = 0;
    const encoder = await downloadCatalogueModel(
      model,
      dir,
      (_m, increment) => (total += increment),
      new AbortController().signal,
    );
    assert.equal(encoder, path.join(dir, 'tiny', 'tiny.encoder.onnx'));
    assert.deepEqual(fs.readFileSync(path.join(dir, 'tiny', 'tiny.decoder.onnx')), payload);
    assert.ok(Math.abs(total - 100) < 1e-6, `progress adds up to ${total}`);
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
