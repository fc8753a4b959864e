import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { writeSampleData } from '../../src/cli/demo';
import { probeWebGpu } from '../../src/engine/webgpuAdapter';
import { jsonCli, runCli } from './cliRun';

// A whole fine-tune (context head, training steps with the encoder unfrozen, pixel head, training check, the
// version written) and a pre-label, in a model process on WebGPU: nothing on the way reads a tensor
// synchronously, which TF.js's WebGPU backend cannot do under Node. On a software adapter here (see
// test/engine/webgpu.test.ts); skipped without any adapter unless MASKLOOP_REQUIRE_WEBGPU=1.

test('a fine-tune round and a pre-label run in a model process on WebGPU', async (t) => {
  process.env.MASKLOOP_WEBGPU = 'software';
  const probe = await probeWebGpu();
  if (!probe.usable) {
    if (process.env.MASKLOOP_REQUIRE_WEBGPU === '1') assert.fail(`no WebGPU adapter: ${probe.reason}`);
    return t.skip(`no WebGPU adapter: ${probe.reason}`);
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-webgpu-'));
  try {
    const data = path.join(root, 'data');
    await writeSampleData(data, 3, 64, 3);
    const env = { MASKLOOP_BACKEND: 'webgpu', MASKLOOP_WEBGPU: 'software' };
    const info = jsonCli<{ backend: { backend: string; label: string }; inference: { runtime: string } }>(['info'], {
      cwd: root,
      env,
    });
    assert.equal(info.backend.backend, 'webgpu');
    assert.match(info.backend.label, /^GPU \(WebGPU: .+\)$/);
    assert.equal(info.inference.runtime, 'tfjs', 'the network pre-labels on the GPU backend, not onnxruntime');
    const ft = jsonCli<{ version: number; steps: number; threads: string; pixelHead: string }>(
      [
        'finetune',
        '--images',
        path.join(data, 'images'),
        '--masks',
        path.join(data, 'truth'),
        '--epochs',
        '1',
        '--steps',
        '2',
        '--crop',
        '32',
        '--json',
      ],
      { cwd: root, env },
    );
    assert.equal(ft.version, 1);
    assert.equal(ft.steps, 2);
    assert.match(ft.threads, /webgpu/);
    const manifest = JSON.parse(
      fs.readFileSync(path.join(root, '.maskloop', 'model', 'versions', '0001', 'manifest.json'), 'utf8'),
    ) as { backend: string };
    assert.equal(manifest.backend, 'webgpu');
    const out = path.join(root, 'pred');
    const r = runCli(['predict', path.join(data, 'images'), '--out', out], { cwd: root, env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readdirSync(out).length, 3);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
