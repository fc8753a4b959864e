// One esbuild script for every bundle: extension host, model process, CLI and tests.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, statSync, rmSync } from 'node:fs';
import { join } from 'node:path';

// Packages with native parts or wasm files stay in node_modules, where they find their own binaries (OpenCV.js
// carries its wasm inside one 11 MB script: loaded from node_modules, not copied into each bundle).
const nodeExternal = ['vscode', '@tensorflow/*', 'sharp', 'onnxruntime-node', '@techstark/opencv-js', 'webgpu'];
const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: 'linked',
  external: nodeExternal,
  logLevel: 'warning',
};

function listTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...listTests(full));
    else if ((name.endsWith('.test.ts') || name.endsWith('.helper.ts')) && !full.includes('desktop')) out.push(full);
  }
  return out;
}

rmSync('dist', { recursive: true, force: true });
rmSync('dist-test', { recursive: true, force: true });
rmSync('dist-tools', { recursive: true, force: true });
await Promise.all([
  build({ ...common, entryPoints: { extension: 'src/extension/extension.ts' }, outdir: 'dist' }),
  build({
    ...common,
    entryPoints: { modelServer: 'src/modelServer/main.ts', gradientWorker: 'src/modelServer/gradientWorker.ts' },
    outdir: 'dist',
  }),
  build({ ...common, entryPoints: { cli: 'src/cli/main.ts' }, outdir: 'dist' }),
  // Tools outside the VSIX: the encoder distillation, the real-data benchmark, the sharpening probe.
  build({
    ...common,
    entryPoints: {
      distillEncoder: 'src/tools/distillEncoder.ts',
      benchReal: 'src/tools/benchReal.ts',
      sharpenProbe: 'src/tools/sharpenProbe.ts',
    },
    outdir: 'dist-tools',
  }),
  build({
    ...common,
    external: [...nodeExternal, 'playwright-core'],
    entryPoints: listTests('test'),
    outdir: 'dist-test',
    outbase: 'test',
  }),
  // The mask editor webview: a browser bundle, no Node APIs.
  build({
    entryPoints: { webview: 'webview/src/main.ts' },
    outdir: 'dist',
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'chrome120',
    sourcemap: 'linked',
    logLevel: 'warning',
  }),
  // The entry for browser extension hosts (VS Code for the web): `vscode` only, no Node APIs.
  build({
    entryPoints: { extension: 'src/web/extension.ts' },
    outdir: 'dist/web',
    bundle: true,
    platform: 'browser',
    format: 'cjs',
    target: 'es2022',
    external: ['vscode'],
    sourcemap: 'linked',
    logLevel: 'warning',
  }),
  // The desktop suite (@vscode/test-electron) runs inside VS Code, so it is bundled apart.
  build({
    ...common,
    entryPoints: { runDesktop: 'test/desktop/runDesktop.ts', suite: 'test/desktop/suite.ts' },
    outdir: 'dist-test/desktop-suite',
  }),
]);
// Codicons for the webview toolbar, served from the extension through asWebviewUri.
mkdirSync('dist/media', { recursive: true });
for (const f of ['codicon.css', 'codicon.ttf'])
  copyFileSync(join('node_modules/@vscode/codicons/dist', f), join('dist/media', f));
