// `maskloop doctor` and "MaskLoop: Check GPU": for every backend, whether it is installed, loads and is usable,
// the exact reason when not and what to do, and on each usable one a 512x512 pre-label and one training step
// timed. Runs in the model process; restores the backend the process runs on when it is done.
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { resolveBackend } from './backends';
import {
  inferenceChoice,
  loadOrt,
  ortLoadError,
  ortMissingBinary,
  setInferenceChoice,
} from './inference/onnxInference';
import { DEFAULT_TILES, predictImage } from './inference/tiledPredict';
import { buildNetwork, networkFor } from './network/networks';
import { networkStride } from './network/resUNet';
import { stepLossFunction } from './training/trainStep';
import type { Crop } from './training/augment';
import { adapterName, probeWebGpu, webGpuSetting } from './webgpuAdapter';
import { nativeLoadDiagnosis } from './nativeDiagnosis';
import { SeededRandom } from '../masks/seededRandom';
import { BACKEND_ORDER, type BackendName } from '../protocol/settings';
import type { DoctorLine, DoctorReport } from '../protocol/doctorTypes';

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0].slice(0, 300);
}

function loadError(pkg: string): string | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(pkg);
    return null;
  } catch (err) {
    return firstLine(err);
  }
}

/** Options of the timings: the image side and the crop size of the training step (the defaults: 512, 256). */
export interface DoctorOptions {
  time: boolean;
  imageSize?: number;
  cropSize?: number;
}

function syntheticImage(size: number): { width: number; height: number; data: Uint8Array } {
  const rng = new SeededRandom(11);
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const inside = (x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 4) ** 2;
      for (let c = 0; c < 3; c++) data[(y * size + x) * 3 + c] = (inside ? 180 : 60) + rng.int(0, 40);
    }
  return { width: size, height: size, data };
}

function syntheticCrops(size: number): Crop[] {
  const rng = new SeededRandom(12);
  return [0, 1].map(() => ({
    x: Float32Array.from({ length: size * size * 3 }, () => rng.range(-1, 1)),
    y: Int32Array.from({ length: size * size }, (_, i) => ((i % size) * 2 < size ? 0 : 1)),
    band: new Float32Array(size * size),
  }));
}

/** Seconds of a 512x512 pre-label and of one training step (Adam, batch of 2 crops) on the current TF.js backend. */
async function timeTfBackend(
  model: tfl.LayersModel,
  options: DoctorOptions,
): Promise<{ preLabel: number; step: number }> {
  const image = syntheticImage(options.imageSize ?? 512);
  const tiles = { ...DEFAULT_TILES, stride: networkStride(networkFor('mobilenetv2', 2)) };
  const before = inferenceChoice();
  setInferenceChoice('tfjs');
  try {
    await predictImage(model, image, tiles); // the first call compiles kernels (WebGPU: its shaders)
    let t0 = performance.now();
    await predictImage(model, image, tiles);
    const preLabel = (performance.now() - t0) / 1000;
    const size = options.cropSize ?? 256;
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const optimizer = tf.train.adam(1e-4);
    const step = stepLossFunction(model, [], syntheticCrops(size), size, { dice: 0.5, boundary: 1, weightDecay: 0 });
    const once = async (): Promise<void> => {
      const loss = optimizer.minimize(step.loss, true, vars);
      await loss?.data();
      loss?.dispose();
    };
    try {
      await once();
      t0 = performance.now();
      await once();
    } finally {
      step.dispose();
      optimizer.dispose();
    }
    return { preLabel, step: (performance.now() - t0) / 1000 };
  } finally {
    setInferenceChoice(before);
  }
}

/** Seconds of a 512x512 pre-label through onnxruntime. */
async function timeOnnx(model: tfl.LayersModel, options: DoctorOptions): Promise<number> {
  const image = syntheticImage(options.imageSize ?? 512);
  const tiles = { ...DEFAULT_TILES, stride: networkStride(networkFor('mobilenetv2', 2)) };
  const before = inferenceChoice();
  setInferenceChoice('onnx');
  try {
    await predictImage(model, image, tiles);
    const t0 = performance.now();
    await predictImage(model, image, tiles);
    return (performance.now() - t0) / 1000;
  } finally {
    setInferenceChoice(before);
  }
}

async function backendLine(name: BackendName): Promise<DoctorLine> {
  switch (name) {
    case 'webgpu': {
      if (webGpuSetting() === 'off')
        return {
          name,
          installed: true,
          loads: false,
          usable: false,
          reason: 'turned off (MASKLOOP_WEBGPU=off)',
          fix: 'unset MASKLOOP_WEBGPU',
        };
      const p = await probeWebGpu();
      return {
        name,
        installed: p.installed,
        loads: p.loaded,
        usable: p.usable,
        reason: p.usable
          ? `adapter: ${adapterName(p.adapter!)}${p.adapter!.software ? ' (software, allowed by MASKLOOP_WEBGPU=software)' : ''}`
          : p.reason,
        fix: p.fix,
        ...(p.adapter ? { adapter: p.adapter } : {}),
      };
    }
    case 'tensorflow-gpu':
    case 'tensorflow': {
      const pkg = name === 'tensorflow' ? '@tensorflow/tfjs-node' : '@tensorflow/tfjs-node-gpu';
      const error = loadError(pkg);
      if (error) {
        const d = nativeLoadDiagnosis(pkg, error);
        return { name, installed: !/Cannot find module/i.test(error), loads: false, usable: false, ...d };
      }
      return { name, installed: true, loads: true, usable: true, reason: `${pkg} loads`, fix: '' };
    }
    case 'wasm':
    case 'cpu':
      return {
        name,
        installed: true,
        loads: true,
        usable: true,
        reason: name === 'wasm' ? 'WebAssembly with SIMD where the CPU has it' : 'pure JavaScript, the last resort',
        fix: '',
      };
  }
}

/**
 * Checks every backend in the order the automatic choice tries them, and onnxruntime; with `time`, times a
 * pre-label and a training step on WebGPU and wasm when usable, and a pre-label through onnxruntime. Pure JS is
 * not timed (minutes at 512x512), nor the native TensorFlow backends (starting one binds the process to it).
 * The process's backend is restored at the end.
 */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const current = await resolveBackend('auto');
  const lines: DoctorLine[] = [];
  try {
    for (const name of BACKEND_ORDER) {
      const line = await backendLine(name);
      if (line.usable && name !== 'tensorflow' && name !== 'tensorflow-gpu') {
        // Start it the way the automatic choice would (the native ones were loaded above; starting them here
        // would bind this process to them).
        try {
          await resolveBackend(name);
        } catch (err) {
          line.usable = false;
          line.reason = `it loads but did not start: ${firstLine(err)}`;
        }
      }
      if (line.usable && options.time && (name === 'wasm' || name === 'webgpu')) {
        // A network per backend: a tensor stays on the backend that made it.
        const model = await buildNetwork(networkFor('mobilenetv2', 2));
        try {
          line.timing = await timeTfBackend(model, options);
        } catch (err) {
          line.usable = false;
          line.reason = `it started but a pre-label or a training step failed: ${firstLine(err)}`;
        } finally {
          model.dispose();
        }
      }
      lines.push(line);
    }
    const ort = loadOrt();
    const onnx: DoctorLine = ort
      ? {
          name: 'onnxruntime',
          installed: true,
          loads: true,
          usable: true,
          reason: `onnxruntime-node ${ort.env.versions.node ?? ''} on the CPU`,
          fix: '',
        }
      : ortMissingBinary()
        ? // Installed, with no binary for this platform (macOS on Intel): nothing to reinstall.
          { name: 'onnxruntime', installed: true, loads: false, usable: false, reason: ortLoadError(), fix: '' }
        : {
            name: 'onnxruntime',
            installed: false,
            loads: false,
            usable: false,
            reason: `onnxruntime-node does not load: ${ortLoadError()}`,
            fix: 'reinstall maskloop (the VSIX for your platform carries it); pre-labels run on TF.js meanwhile',
          };
    if (ort && options.time) {
      // onnxruntime reads the weights from the CPU: the network is built on WebAssembly.
      await resolveBackend('wasm');
      const model = await buildNetwork(networkFor('mobilenetv2', 2));
      try {
        onnx.timing = { preLabel: await timeOnnx(model, options) };
      } finally {
        model.dispose();
      }
    }
    lines.push(onnx);
  } finally {
    await resolveBackend(current.backend);
  }
  return {
    platform: `${process.platform}-${process.arch}`,
    node: process.versions.node,
    napi: process.versions.napi ?? '',
    cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown CPU'}`,
    selected: current.backend,
    selectedLabel: current.label,
    lines,
  };
}
