import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-layers' node bundle registers every op's gradient in the global registry on load.
import '@tensorflow/tfjs-layers';
import * as path from 'node:path';
import { registerGradientFixes } from './training/gradientKernels';
import { nativeLoadDiagnosis } from './nativeDiagnosis';
import { adapterName, installWebGpuGlobals, probeWebGpu, webGpuSetting } from './webgpuAdapter';
import {
  BACKEND_ORDER,
  type BackendAttempt,
  type BackendChoice,
  type BackendName,
  type BackendReport,
  onGpuBackend,
} from '../protocol/settings';
import { setGpuBackend } from './inference/onnxInference';

const LABELS: Record<BackendName, string> = {
  webgpu: 'GPU (WebGPU)',
  'tensorflow-gpu': 'GPU (TensorFlow native, CUDA)',
  tensorflow: 'CPU (TensorFlow native)',
  wasm: 'CPU (WebAssembly)',
  cpu: 'CPU (pure JavaScript)',
};

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0].slice(0, 300);
}

// Native bindings are optional dependencies loaded by name at run time, never bundled.
function requireOptional(name: string): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(name);
}

async function tryNative(gpu: boolean): Promise<string | undefined> {
  const pkg = gpu ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  try {
    requireOptional(pkg);
  } catch (err) {
    const d = nativeLoadDiagnosis(pkg, firstLine(err));
    return d.fix ? `${d.reason} (${d.fix})` : d.reason;
  }
  if (!(await tf.setBackend('tensorflow'))) return `${pkg} loaded but its backend failed to initialise`;
  if (gpu) {
    // tfjs-node-gpu falls back to the CPU silently when CUDA is absent: check a GPU device is really there.
    const binding = (tf.backend() as unknown as { binding?: { isUsingGpuDevice?: () => boolean } }).binding;
    if (binding?.isUsingGpuDevice && !binding.isUsingGpuDevice()) return `${pkg} loaded but found no usable CUDA GPU`;
  }
  return undefined;
}

async function tryWasm(): Promise<string | undefined> {
  try {
    const wasm = requireOptional('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
    // Bundled code cannot locate the .wasm files by itself; the trailing separator is required.
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    wasm.setWasmPaths(dir + path.sep);
    if (!(await tf.setBackend('wasm'))) return 'the WebAssembly backend failed to initialise';
    return undefined;
  } catch (err) {
    return `the WebAssembly backend failed: ${firstLine(err)}`;
  }
}

async function tryWebGpu(): Promise<string | undefined> {
  if (webGpuSetting() === 'off') return 'turned off (MASKLOOP_WEBGPU=off)';
  const probe = await probeWebGpu();
  if (!probe.usable) return probe.fix ? `${probe.reason} (${probe.fix})` : probe.reason;
  try {
    if (!(await installWebGpuGlobals())) return 'no usable WebGPU adapter';
    // The backend registers itself on load only where navigator.gpu exists: after installWebGpuGlobals.
    requireOptional('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) return 'the WebGPU backend failed to initialise on its adapter';
    return undefined;
  } catch (err) {
    return `the WebGPU backend failed: ${firstLine(err)}`;
  }
}

async function tryBackend(name: BackendName): Promise<string | undefined> {
  switch (name) {
    case 'webgpu':
      return tryWebGpu();
    case 'tensorflow-gpu':
      return tryNative(true);
    case 'tensorflow':
      return tryNative(false);
    case 'wasm':
      return tryWasm();
    case 'cpu':
      return (await tf.setBackend('cpu')) ? undefined : 'the cpu backend failed to initialise';
  }
}

let resolved: BackendReport | undefined;

/**
 * Resolves the fastest working backend (or the forced one) once per process, registers the
 * gradient kernels maskloop needs, and reports why each faster backend was skipped.
 */
export async function resolveBackend(choice: BackendChoice = 'auto'): Promise<BackendReport> {
  if (resolved && (choice === 'auto' || choice === resolved.backend)) return resolved;
  const attempts: BackendAttempt[] = [];
  const order: readonly BackendName[] = choice === 'auto' ? BACKEND_ORDER : [choice];
  for (const name of order) {
    const failure = await tryBackend(name);
    attempts.push({ backend: name, ok: failure === undefined, reason: failure ?? 'selected' });
    if (failure === undefined) {
      registerGradientFixes(tf.getBackend());
      setGpuBackend(onGpuBackend(name) ? name : null);
      const report: BackendReport = {
        backend: name,
        tfBackend: tf.getBackend(),
        label: LABELS[name],
        attempts,
        tfjsVersion: tf.version_core,
      };
      if (name === 'webgpu') {
        const adapter = (await probeWebGpu()).adapter;
        if (adapter) report.adapter = adapterName(adapter);
        report.label = `GPU (WebGPU: ${report.adapter ?? 'adapter'})`;
      }
      if (name === 'wasm') {
        report.simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean;
        report.threads = 1; // the wasm backend disables its thread pool under Node
      }
      resolved = report;
      return report;
    }
  }
  const why = attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ');
  throw new Error(`No TensorFlow.js backend could start (${why})`);
}

/** The backend this process resolved, if it has. */
export function resolvedBackend(): BackendReport | undefined {
  return resolved;
}

export function backendLabel(name: BackendName): string {
  return LABELS[name];
}
