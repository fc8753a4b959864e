import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { runDoctor } from '../../src/engine/doctor';
import { nativeLoadDiagnosis } from '../../src/engine/nativeDiagnosis';
import { isSoftwareAdapter, noAdapterDiagnosis, probeWebGpu } from '../../src/engine/webgpuAdapter';
import { doctorText } from '../../src/protocol/doctorText';
import { BACKEND_ORDER } from '../../src/protocol/settings';

test('software rasterisers are told from GPUs by what the adapter says', () => {
  assert.equal(isSoftwareAdapter({ vendor: 'mesa', architecture: 'software', device: 'llvmpipe' }), true);
  assert.equal(isSoftwareAdapter({ isFallbackAdapter: true }), true);
  assert.equal(isSoftwareAdapter({ description: 'SwiftShader Device (Subzero)' }), true);
  assert.equal(isSoftwareAdapter({ description: 'Microsoft Basic Render Driver' }), true);
  assert.equal(isSoftwareAdapter({ vendor: 'nvidia', architecture: 'ada', description: 'NVIDIA H200' }), false);
  assert.equal(isSoftwareAdapter({ vendor: 'apple', architecture: 'metal-3', description: 'Apple M2' }), false);
});

test('no adapter on Linux: the missing Vulkan loader, then the missing driver, then an unsupported one', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-vk-'));
  const lib = path.join(root, 'lib');
  const icd = path.join(root, 'icd.d');
  fs.mkdirSync(lib);
  fs.mkdirSync(icd);
  try {
    const places = { libDirs: [lib], icdDirs: [icd] };
    let d = noAdapterDiagnosis('linux', places, {});
    assert.match(d.reason, /Vulkan loader \(libvulkan\.so\.1\) is not installed/);
    assert.match(d.fix, /apt install libvulkan1/);
    fs.writeFileSync(path.join(lib, 'libvulkan.so.1'), '');
    d = noAdapterDiagnosis('linux', places, {});
    assert.match(d.reason, /no Vulkan driver is/);
    assert.match(d.fix, /mesa-vulkan-drivers/);
    fs.writeFileSync(path.join(icd, 'nvidia_icd.json'), '{}');
    d = noAdapterDiagnosis('linux', places, {});
    assert.match(d.reason, /drivers: nvidia_icd\.json\) but Dawn found no adapter/);
    assert.match(d.fix, /vulkaninfo/);
    assert.match(noAdapterDiagnosis('darwin').reason, /Metal/);
    assert.match(noAdapterDiagnosis('win32').reason, /Direct3D 12/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a native TensorFlow package that does not load is explained with its fix', () => {
  const missing = nativeLoadDiagnosis('@tensorflow/tfjs-node-gpu', "Cannot find module '@tensorflow/tfjs-node-gpu'");
  assert.match(missing.reason, /not installed/);
  assert.match(missing.fix, /CUDA 11\.2 and cuDNN 8\.1/);
  const cuda = nativeLoadDiagnosis(
    '@tensorflow/tfjs-node-gpu',
    'libcudart.so.11.0: cannot open shared object file: No such file or directory',
  );
  assert.match(cuda.reason, /libcudart\.so\.11\.0 is missing/);
  assert.match(cuda.fix, /CUDA 11\.2/);
  const abi = nativeLoadDiagnosis(
    '@tensorflow/tfjs-node',
    'The module was compiled against a different Node.js version using NODE_MODULE_VERSION 108',
  );
  assert.match(abi.reason, /another Node\.js ABI/);
  assert.match(abi.fix, /npm rebuild/);
  const lib = nativeLoadDiagnosis('@tensorflow/tfjs-node', 'libtensorflow.so.2: cannot open shared object file');
  assert.match(lib.reason, /libtensorflow is missing/);
});

test('the doctor on this machine: a line per backend and onnxruntime, each with a true reason', async () => {
  const report = await runDoctor({ time: false });
  assert.deepEqual(
    report.lines.map((l) => l.name),
    [...BACKEND_ORDER, 'onnxruntime'],
  );
  const line = (name: string) => report.lines.find((l) => l.name === name)!;
  assert.equal(line('wasm').usable, true);
  assert.equal(line('cpu').usable, true);
  // This machine has no GPU: WebGPU is unusable (no Vulkan, or only a software adapter), and said why.
  const probe = await probeWebGpu();
  const webgpu = line('webgpu');
  assert.equal(webgpu.usable, probe.usable);
  if (!webgpu.usable) {
    assert.match(webgpu.reason, /Vulkan loader|no Vulkan driver|only a software adapter|no adapter/);
    assert.ok(webgpu.fix.length > 0, 'a fix is given');
    assert.notEqual(report.selected, 'webgpu');
  }
  for (const name of ['tensorflow', 'tensorflow-gpu']) {
    const l = line(name);
    if (!l.usable) {
      assert.ok(l.reason.length > 0 && l.fix.length > 0, `${name}: ${l.reason} / ${l.fix}`);
    }
  }
  const text = doctorText(report).join('\n');
  assert.match(text, /^automatic choice: /m);
  assert.match(text, /^webgpu: /m);
  assert.match(text, /^onnxruntime: /m);
});

test('the doctor times a pre-label and a training step on the usable CPU backends', async () => {
  const report = await runDoctor({ time: true, imageSize: 128, cropSize: 64 });
  const wasm = report.lines.find((l) => l.name === 'wasm')!;
  assert.ok(wasm.timing && wasm.timing.preLabel > 0 && (wasm.timing.step ?? 0) > 0, JSON.stringify(wasm.timing));
  const ort = report.lines.find((l) => l.name === 'onnxruntime')!;
  if (ort.usable) assert.ok(ort.timing && ort.timing.preLabel > 0);
});
