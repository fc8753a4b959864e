// `npm run package:all`: one VSIX per platform the Marketplace takes (`vsce package --target`), all built on this
// machine. Each target gets a staging folder (.cache/package/TARGET) holding the built extension and a
// production install made for that platform (`npm install --os --cpu`: npm fetches that platform's optional
// packages, sharp's @img/sharp-* among them, from the registry). The VSIX then carries exactly that platform's
// native parts of sharp, onnxruntime-node and webgpu, nothing of the others; the `web` target carries only the
// browser entry (VS Code for the web). Run `npm run build` first.
//   node scripts/package-all.mjs [--targets linux-x64,win32-x64] [--out dist-vsix] [--keep (the staging folders)]
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

// The platforms (scripts/platforms.json, also read by test/unit/platformVsix.test.ts): for each, npm's os and
// cpu, sharp's @img packages, onnxruntime-node's binary folder (bin/napi-v6/OS/CPU; null: none in 1.30, so
// pre-labels run on TF.js wasm there and say so) and webgpu's (dist/OS-CPU). Not built: alpine-x64
// (onnxruntime-node has no musl binary and webgpu's Linux binary needs glibc), linux-armhf and win32-ia32
// (neither runtime ships for them).
const PLATFORMS = JSON.parse(readFileSync(new URL('./platforms.json', import.meta.url), 'utf8'));
const ORT_DIRS = ['linux/x64', 'linux/arm64', 'win32/x64', 'win32/arm64', 'darwin/arm64'];
const WEBGPU_DIRS = ['linux-x64', 'linux-arm64', 'win32-x64', 'win32-arm64', 'darwin-universal'];

/** .vscodeignore lines that leave out every other platform's binaries. */
function platformIgnores(p) {
  return [
    ...ORT_DIRS.filter((d) => d !== p.ort).map((d) => `node_modules/onnxruntime-node/bin/napi-v6/${d}/**`),
    ...WEBGPU_DIRS.filter((d) => d !== p.webgpu).map((d) => `node_modules/webgpu/dist/${d}/**`),
  ];
}

const root = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
// `web`: VS Code for the web (vscode.dev, github.dev), which installs a VSIX of that target and runs only its
// browser entry (dist/web/extension.js): that entry says MaskLoop needs Node and where it runs.
const ALL = [...Object.keys(PLATFORMS), 'web'];
const targets = arg('--targets', ALL.join(',')).split(',');
const out = resolve(root, arg('--out', 'dist-vsix'));
for (const t of targets) if (!ALL.includes(t)) throw new Error(`unknown target ${t}: one of ${ALL.join(', ')}`);
if (!existsSync(join(root, 'dist', 'extension.js'))) throw new Error('run `npm run build` first: dist/ is missing');
mkdirSync(out, { recursive: true });

// What the extension ships, besides node_modules (the same set a plain `npm run package` takes).
const SHIPPED = ['bin', 'dist', 'docs', 'media', 'models', 'README.md', 'CHANGELOG.md', 'LICENSE', '.npmrc'];

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const vsce = join(root, 'node_modules', '.bin', 'vsce');
const report = [];
/** The web VSIX: the browser entry, the README and the licence; no Node bundle, no package, no model. */
function stageWeb(stage) {
  mkdirSync(join(stage, 'dist', 'web'), { recursive: true });
  for (const f of ['README.md', 'CHANGELOG.md', 'LICENSE']) cpSync(join(root, f), join(stage, f));
  cpSync(join(root, 'dist', 'web', 'extension.js'), join(stage, 'dist', 'web', 'extension.js'));
  const staged = structuredClone(pkg);
  for (const key of [
    'main',
    'extensionKind',
    'bin',
    'scripts',
    'dependencies',
    'optionalDependencies',
    'devDependencies',
  ])
    delete staged[key];
  writeFileSync(join(stage, 'package.json'), JSON.stringify(staged, null, 2) + '\n');
  writeFileSync(join(stage, '.vscodeignore'), '.vscodeignore\n');
}

/** Packages a staging folder as maskloop-TARGET.vsix into `out`, reports its size and removes the folder. */
function packageStage(stage, target, extra = []) {
  const file = join(out, `maskloop-${target}.vsix`);
  rmSync(file, { force: true });
  execFileSync(
    vsce,
    [
      'package',
      '--allow-missing-repository',
      '--no-rewrite-relative-links',
      ...extra,
      '--target',
      target,
      '--out',
      file,
    ],
    { cwd: stage, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  // A platform's staging folder holds every platform's onnxruntime-node (290 MB): removed once its VSIX is written.
  if (!args.includes('--keep')) rmSync(stage, { recursive: true, force: true });
  const mib = statSync(file).size / 2 ** 20;
  report.push({ target, file, mib: Math.round(mib * 100) / 100 });
  process.stderr.write(`${target}: ${file} (${mib.toFixed(2)} MiB)\n`);
}

for (const target of targets) {
  const p = PLATFORMS[target];
  const stage = join(root, '.cache', 'package', target);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  if (target === 'web') {
    stageWeb(stage);
    packageStage(stage, target, ['--no-dependencies']);
    continue;
  }
  for (const f of SHIPPED) if (existsSync(join(root, f))) cpSync(join(root, f), join(stage, f), { recursive: true });
  cpSync(join(root, 'package-lock.json'), join(stage, 'package-lock.json'));
  // The bundles are built already; the native TensorFlow packages download libtensorflow at install (and with
  // scripts off would arrive without it), so no platform VSIX carries them.
  const staged = structuredClone(pkg);
  delete staged.scripts['vscode:prepublish'];
  delete staged.devDependencies;
  for (const name of ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu']) delete staged.optionalDependencies?.[name];
  writeFileSync(join(stage, 'package.json'), JSON.stringify(staged, null, 2) + '\n');
  const ignore = readFileSync(join(root, '.vscodeignore'), 'utf8').replace(
    /# platform: begin[\s\S]*?# platform: end\n/,
    `# platform: ${target}\n${platformIgnores(p).join('\n')}\n`,
  );
  if (!ignore.includes(`# platform: ${target}`)) throw new Error('.vscodeignore has no "# platform: begin/end" block');
  writeFileSync(join(stage, '.vscodeignore'), ignore);
  process.stderr.write(`${target}: installing its production packages (npm --os=${p.os} --cpu=${p.cpu})...\n`);
  execFileSync(
    'npm',
    [
      'install',
      '--omit=dev',
      `--os=${p.os}`,
      `--cpu=${p.cpu}`,
      ...(p.libc ? [`--libc=${p.libc}`] : []),
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
    ],
    { cwd: stage, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  packageStage(stage, target);
}
console.log(JSON.stringify(report, null, 2));
