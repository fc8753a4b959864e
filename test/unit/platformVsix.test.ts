import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as zlib from 'node:zlib';
import platforms from '../../scripts/platforms.json';

// Every built VSIX unpacked (its zip directory read) and its native files checked by platform: that platform's
// sharp (@img), onnxruntime-node and webgpu (Dawn) binaries present, no other platform's, no native TensorFlow
// package. `npm test` packages maskloop.vsix (linux-x64); `npm run package:all` writes dist-vsix/ with one VSIX
// per platform, which .ci/run builds first and requires (MASKLOOP_REQUIRE_VSIXS=1).

type Platform = { os: string; cpu: string; sharp: string[]; ort: string | null; webgpu: string };
const PLATFORMS = platforms as Record<string, Platform>;
const root = path.resolve(__dirname, '..', '..');

interface ZipEntry {
  name: string;
  size: number;
  compressed: number;
  method: number;
  offset: number;
}

/** The entries of a zip file, from its central directory. */
export function zipEntries(file: string): ZipEntry[] {
  const buf = fs.readFileSync(file);
  let end = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--)
    if (buf.readUInt32LE(i) === 0x06054b50) {
      end = i;
      break;
    }
  if (end < 0) throw new Error(`${file} is not a zip file (no end of central directory)`);
  const count = buf.readUInt16LE(end + 10);
  let p = buf.readUInt32LE(end + 16);
  const out: ZipEntry[] = [];
  for (let n = 0; n < count; n++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`${file}: damaged central directory`);
    const nameLength = buf.readUInt16LE(p + 28);
    const extra = buf.readUInt16LE(p + 30);
    const comment = buf.readUInt16LE(p + 32);
    out.push({
      name: buf.toString('utf8', p + 46, p + 46 + nameLength),
      method: buf.readUInt16LE(p + 10),
      compressed: buf.readUInt32LE(p + 20),
      size: buf.readUInt32LE(p + 24),
      offset: buf.readUInt32LE(p + 42),
    });
    p += 46 + nameLength + extra + comment;
  }
  return out;
}

/** One entry's bytes (stored or deflated). */
function zipRead(file: string, entry: ZipEntry): Buffer {
  const buf = fs.readFileSync(file);
  const start = entry.offset + 30 + buf.readUInt16LE(entry.offset + 26) + buf.readUInt16LE(entry.offset + 28);
  const data = buf.subarray(start, start + entry.compressed);
  return entry.method === 8 ? zlib.inflateRawSync(data) : data;
}

function builtVsixes(): { target: string; file: string }[] {
  const found: { target: string; file: string }[] = [];
  const single = path.join(root, 'maskloop.vsix');
  if (fs.existsSync(single)) found.push({ target: 'linux-x64', file: single });
  for (const target of [...Object.keys(PLATFORMS), 'web']) {
    const file = path.join(root, 'dist-vsix', `maskloop-${target}.vsix`);
    if (fs.existsSync(file)) found.push({ target, file });
  }
  return found;
}

const NM = 'extension/node_modules/';

/** What is wrong with a VSIX's native files for its target ([] when nothing). */
export function nativeProblems(target: string, names: string[]): string[] {
  const p = PLATFORMS[target];
  const problems: string[] = [];
  const has = (prefix: string): boolean => names.some((n) => n.startsWith(prefix));
  for (const pkg of p.sharp) if (!has(`${NM}@img/${pkg}/`)) problems.push(`sharp's @img/${pkg} is missing`);
  const img = new Set(
    names.filter((n) => n.startsWith(`${NM}@img/sharp-`)).map((n) => n.slice(`${NM}@img/`.length).split('/')[0]),
  );
  for (const pkg of img) if (!p.sharp.includes(pkg)) problems.push(`it carries another platform's @img/${pkg}`);
  const ortBin = `${NM}onnxruntime-node/bin/napi-v6/`;
  const ortDirs = new Set(
    names
      .filter((n) => n.startsWith(ortBin) && !n.endsWith('/'))
      .map((n) => n.slice(ortBin.length).split('/').slice(0, 2).join('/')),
  );
  if (p.ort && !names.includes(`${ortBin}${p.ort}/onnxruntime_binding.node`))
    problems.push(`onnxruntime-node's ${p.ort} binding is missing`);
  for (const d of ortDirs) if (d !== p.ort) problems.push(`it carries onnxruntime-node's ${d} binaries`);
  const dawn = `${NM}webgpu/dist/`;
  if (!names.includes(`${dawn}${p.webgpu}/dawn.node`)) problems.push(`webgpu's ${p.webgpu}/dawn.node is missing`);
  const dawnDirs = new Set(
    names.filter((n) => n.startsWith(dawn) && !n.endsWith('/')).map((n) => n.slice(dawn.length).split('/')[0]),
  );
  for (const d of dawnDirs) if (d !== p.webgpu) problems.push(`it carries webgpu's ${d} binary`);
  if (has(`${NM}@tensorflow/tfjs-node`)) problems.push('it carries a native TensorFlow package');
  return problems;
}

test('the native-file check catches a missing binary and a foreign one', () => {
  const names = [
    `${NM}@img/sharp-linux-x64/lib/sharp-linux-x64.node`,
    `${NM}@img/sharp-libvips-linux-x64/lib/libvips-cpp.so`,
    `${NM}@img/sharp-win32-x64/lib/libvips-42.dll`,
    `${NM}onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node`,
    `${NM}onnxruntime-node/bin/napi-v6/darwin/arm64/onnxruntime_binding.node`,
  ];
  assert.deepEqual(nativeProblems('linux-x64', names), [
    "it carries another platform's @img/sharp-win32-x64",
    "it carries onnxruntime-node's darwin/arm64 binaries",
    "webgpu's linux-x64/dawn.node is missing",
  ]);
  assert.ok(nativeProblems('darwin-x64', names).includes("sharp's @img/sharp-darwin-x64 is missing"));
});

test("every built VSIX carries exactly its platform's native files", (t) => {
  const built = builtVsixes();
  if (process.env.MASKLOOP_REQUIRE_VSIXS === '1') {
    const missing = [...Object.keys(PLATFORMS), 'web'].filter(
      (target) => !built.some((b) => b.target === target && b.file.includes('dist-vsix')),
    );
    assert.deepEqual(missing, [], 'npm run package:all builds a VSIX for every platform');
  }
  if (built.length === 0) return t.skip('no VSIX built (npm run package, npm run package:all)');
  for (const { target, file } of built) {
    if (target === 'web') continue; // its own test, below
    const entries = zipEntries(file);
    const names = entries.map((e) => e.name);
    assert.deepEqual(nativeProblems(target, names), [], `${path.basename(file)} (${target})`);
    const manifest = entries.find((e) => e.name === 'extension.vsixmanifest');
    assert.ok(manifest, `${file} has a manifest`);
    assert.match(
      zipRead(file, manifest).toString('utf8'),
      new RegExp(`TargetPlatform="${target}"`),
      `${path.basename(file)} is marked for ${target}`,
    );
    for (const must of [
      'extension/dist/extension.js',
      'extension/dist/modelServer.js',
      'extension/dist/web/extension.js',
      'extension/package.json',
    ])
      assert.ok(names.includes(must), `${path.basename(file)} has ${must}`);
    assert.ok(
      names.some((n) => n.startsWith('extension/models/encoders/mobilenetv2/')),
      'the encoder weights',
    );
    const mib = fs.statSync(file).size / 2 ** 20;
    t.diagnostic(`${path.basename(file)}: ${target}, ${mib.toFixed(1)} MiB, ${entries.length} files`);
  }
});

test('the web VSIX carries the browser entry and nothing of the engine', (t) => {
  const file = path.join(root, 'dist-vsix', 'maskloop-web.vsix');
  if (!fs.existsSync(file)) {
    assert.notEqual(process.env.MASKLOOP_REQUIRE_VSIXS, '1', 'npm run package:all builds the web VSIX');
    return t.skip('no web VSIX built (npm run package:all)');
  }
  const entries = zipEntries(file);
  const names = entries.map((e) => e.name).filter((n) => n.startsWith('extension/'));
  assert.deepEqual(names.sort(), [
    'extension/LICENSE.txt',
    'extension/changelog.md',
    'extension/dist/web/extension.js',
    'extension/package.json',
    'extension/readme.md',
  ]);
  const manifest = zipRead(
    file,
    entries.find((e) => e.name === 'extension.vsixmanifest')!,
  ).toString('utf8');
  assert.match(manifest, /TargetPlatform="web"/);
  const pkg = JSON.parse(
    zipRead(
      file,
      entries.find((e) => e.name === 'extension/package.json')!,
    ).toString('utf8'),
  );
  // Only a browser entry: VS Code runs it in the browser's extension host, wherever the workbench is.
  assert.equal(pkg.browser, './dist/web/extension.js');
  for (const key of ['main', 'extensionKind', 'dependencies', 'optionalDependencies'])
    assert.equal(pkg[key], undefined, key);
  t.diagnostic(`maskloop-web.vsix: ${(fs.statSync(file).size / 1024).toFixed(0)} KiB`);
});

test('the browser entry loads nothing but the VS Code API', () => {
  const bundle = fs.readFileSync(path.join(root, 'dist', 'web', 'extension.js'), 'utf8');
  const required = [...bundle.matchAll(/require\(["']([^"']+)["']\)/g)].map((m) => m[1]);
  assert.deepEqual([...new Set(required)], ['vscode']);
  assert.doesNotMatch(bundle, /child_process|onnxruntime|@tensorflow|sharp/);
});

test('the extension runs beside the data (a workspace extension); a browser host gets the notice entry', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  // Over Remote-SSH, WSL, containers and Codespaces it runs on the remote side, where the images are. A browser
  // extension host (VS Code for the web, or a remote window whose remote lacks the extension) runs the browser
  // entry, which says where MaskLoop runs: its model process needs Node, native and WebAssembly modules.
  assert.deepEqual(pkg.extensionKind, ['workspace']);
  assert.equal(pkg.browser, './dist/web/extension.js');
  assert.equal(pkg.main, './dist/extension.js');
});
