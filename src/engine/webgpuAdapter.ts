// WebGPU in the model process through Dawn's Node bindings (the npm package `webgpu`: its `dawn.node` for each
// platform ships in the package, nothing is downloaded). Finds an adapter, tells a real GPU from a software
// rasteriser, and says why there is none and what to install. Vulkan on Linux, Metal on macOS, D3D12 on Windows.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** What a GPU adapter says about itself, and whether it is a software rasteriser. */
export interface GpuAdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU rasteriser (llvmpipe/lavapipe, SwiftShader, WARP): slower than the CPU backends. */
  software: boolean;
  limits: {
    maxBufferSize: number;
    maxStorageBufferBindingSize: number;
    maxComputeWorkgroupSizeX: number;
    maxComputeInvocationsPerWorkgroup: number;
  };
}

export interface WebGpuProbe {
  /** The package and its binary for this platform are present. */
  installed: boolean;
  /** Its binary loaded. */
  loaded: boolean;
  adapter: GpuAdapterSummary | null;
  /** An adapter to run on: a hardware one, or a software one when MASKLOOP_WEBGPU=software. */
  usable: boolean;
  /** Why it is not usable ('' when it is). */
  reason: string;
  /** What to do about it ('' when nothing). */
  fix: string;
}

/** The slice of the WebGPU API maskloop touches (the DOM typings are not part of this Node build). */
export interface GpuLike {
  requestAdapter(options?: { powerPreference?: string; forceFallbackAdapter?: boolean }): Promise<AdapterLike | null>;
}
export interface AdapterLike {
  info?: Record<string, unknown>;
  limits: Record<string, number>;
  features: { has(name: string): boolean };
  requestDevice(descriptor?: unknown): Promise<unknown>;
}

interface DawnBinding {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

/** `MASKLOOP_WEBGPU=software` lets a software adapter run (tests, debugging); `off` never tries WebGPU. */
export function webGpuSetting(): 'auto' | 'software' | 'off' {
  const v = process.env.MASKLOOP_WEBGPU;
  return v === 'software' || v === 'off' ? v : 'auto';
}

/** The `dawn.node` this platform needs, inside the installed package, or null with why. */
export function dawnBinaryPath(): { file: string } | { missing: string } {
  let dir: string;
  try {
    dir = path.dirname(require.resolve('webgpu/package.json'));
  } catch {
    return { missing: 'the npm package "webgpu" is not installed' };
  }
  const arch = process.platform === 'darwin' ? 'universal' : process.arch;
  const file = path.join(dir, 'dist', `${process.platform}-${arch}`, 'dawn.node');
  if (!fs.existsSync(file))
    return { missing: `the package "webgpu" has no binary for ${process.platform}-${arch} (${file} is absent)` };
  return { file };
}

const SOFTWARE_NAMES = /llvmpipe|lavapipe|softpipe|swiftshader|\bwarp\b|basic render driver/i;

/** Whether an adapter's info describes a software rasteriser. */
export function isSoftwareAdapter(info: Record<string, unknown>): boolean {
  if (info.isFallbackAdapter === true || info.architecture === 'software') return true;
  return SOFTWARE_NAMES.test(`${String(info.device ?? '')} ${String(info.description ?? '')}`);
}

export function summariseAdapter(adapter: AdapterLike): GpuAdapterSummary {
  const info = adapter.info ?? {};
  const s = (v: unknown): string => (typeof v === 'string' ? v : '');
  return {
    vendor: s(info.vendor),
    architecture: s(info.architecture),
    device: s(info.device),
    description: s(info.description),
    software: isSoftwareAdapter(info),
    limits: {
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupSizeX: adapter.limits.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
    },
  };
}

/** One line naming an adapter: its description, else vendor and device. */
export function adapterName(a: GpuAdapterSummary): string {
  return a.description || [a.vendor, a.device].filter(Boolean).join(' ') || 'an unnamed adapter';
}

/** Directories where the Vulkan loader and its drivers' manifests are looked for, on Linux. */
export interface VulkanPlaces {
  libDirs: string[];
  icdDirs: string[];
}

export const LINUX_VULKAN_PLACES: VulkanPlaces = {
  libDirs: [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/lib/x86_64-linux-gnu',
    '/lib64',
    '/usr/local/lib',
  ],
  icdDirs: ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'],
};

/** Whether the Vulkan loader (libvulkan.so.1) is in one of the library folders. */
export function hasVulkanLoader(places: VulkanPlaces): boolean {
  return places.libDirs.some((d) => fs.existsSync(path.join(d, 'libvulkan.so.1')));
}

/**
 * Why no WebGPU adapter was found, and the fix, from what is installed: on Linux, whether the Vulkan loader
 * (libvulkan.so.1) and any driver manifest (ICD) exist; on macOS and Windows, the system API Dawn uses.
 */
export function noAdapterDiagnosis(
  platform: NodeJS.Platform,
  places: VulkanPlaces = LINUX_VULKAN_PLACES,
  env: NodeJS.ProcessEnv = process.env,
): { reason: string; fix: string } {
  if (platform === 'darwin')
    return {
      reason: 'Dawn found no Metal adapter',
      fix: 'WebGPU needs macOS 11 or later on a Mac with a Metal GPU; update macOS',
    };
  if (platform === 'win32')
    return {
      reason: 'Dawn found no Direct3D 12 or Vulkan adapter',
      fix: "install or update your GPU's driver (Direct3D 12 is needed; Windows 10 or later)",
    };
  if (!hasVulkanLoader(places))
    return {
      reason: 'the Vulkan loader (libvulkan.so.1) is not installed, and Dawn needs it on Linux',
      fix:
        "install it with your GPU's Vulkan driver: Debian/Ubuntu `sudo apt install libvulkan1 mesa-vulkan-drivers` " +
        '(AMD, Intel; NVIDIA: the proprietary driver, which ships its Vulkan driver), Fedora `sudo dnf install ' +
        'vulkan-loader mesa-vulkan-drivers`',
    };
  const fromEnv = (env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES ?? '').split(':').filter(Boolean);
  const manifests = [
    ...fromEnv.filter((f) => fs.existsSync(f)),
    ...places.icdDirs.flatMap((d) => {
      try {
        return fs.readdirSync(d).filter((f) => f.endsWith('.json'));
      } catch {
        return [];
      }
    }),
  ];
  if (manifests.length === 0)
    return {
      reason: `the Vulkan loader is installed but no Vulkan driver is (no driver manifest in ${places.icdDirs.join(', ')})`,
      fix:
        "install your GPU's Vulkan driver: `sudo apt install mesa-vulkan-drivers` (AMD, Intel), or NVIDIA's " +
        'proprietary driver; `vulkaninfo --summary` (package vulkan-tools) lists what Vulkan sees',
    };
  return {
    reason: `Vulkan is installed (drivers: ${manifests.slice(0, 4).join(', ')}) but Dawn found no adapter it supports`,
    fix:
      'update the GPU driver (Dawn needs Vulkan 1.1 with the features WebGPU requires); `vulkaninfo --summary` ' +
      '(package vulkan-tools) shows what the driver offers; on a machine without a GPU this is expected',
  };
}

let dawn: { binding: DawnBinding; gpu: GpuLike } | null | undefined;
let dawnError = '';

/** Loads `dawn.node` once and creates its GPU instance, or null (`why` says why). */
function loadDawn(): { binding: DawnBinding; gpu: GpuLike } | null {
  if (dawn !== undefined) return dawn;
  const where = dawnBinaryPath();
  if ('missing' in where) {
    dawnError = where.missing;
    return (dawn = null);
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const binding = require(where.file) as DawnBinding;
    dawn = { binding, gpu: binding.create([]) };
  } catch (err) {
    dawnError = `its binary failed to load: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`;
    dawn = null;
  }
  return dawn;
}

/** Resolves within `ms`, else rejects: a driver that hangs must not hang the model process. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

let probed: { probe: WebGpuProbe; adapter: AdapterLike | null; gpu: GpuLike | null } | undefined;

/** Looks for a WebGPU adapter once per process (the high-performance one), and says what it found. */
export async function probeWebGpu(): Promise<WebGpuProbe> {
  return (await findAdapter()).probe;
}

async function findAdapter(): Promise<{ probe: WebGpuProbe; adapter: AdapterLike | null; gpu: GpuLike | null }> {
  if (probed) return probed;
  const base = { installed: false, loaded: false, adapter: null, usable: false };
  const where = dawnBinaryPath();
  if ('missing' in where) {
    probed = {
      probe: { ...base, reason: where.missing, fix: 'reinstall maskloop (the VSIX for your platform carries it)' },
      adapter: null,
      gpu: null,
    };
    return probed;
  }
  if (process.platform === 'linux' && !hasVulkanLoader(LINUX_VULKAN_PLACES)) {
    // Dawn would only print that it cannot load Vulkan: say it here, without loading it.
    const diagnosis = noAdapterDiagnosis('linux');
    probed = {
      probe: { ...base, installed: true, reason: `no WebGPU adapter: ${diagnosis.reason}`, fix: diagnosis.fix },
      adapter: null,
      gpu: null,
    };
    return probed;
  }
  const d = loadDawn();
  if (!d) {
    probed = {
      probe: { ...base, installed: true, reason: `the package "webgpu" is installed but ${dawnError}`, fix: '' },
      adapter: null,
      gpu: null,
    };
    return probed;
  }
  let adapter: AdapterLike | null = null;
  let failure = '';
  try {
    adapter = await within(d.gpu.requestAdapter({ powerPreference: 'high-performance' }), 20_000, 'the GPU driver');
  } catch (err) {
    failure = err instanceof Error ? err.message : String(err);
  }
  if (!adapter) {
    const diagnosis = noAdapterDiagnosis(process.platform);
    probed = {
      probe: {
        ...base,
        installed: true,
        loaded: true,
        reason: failure ? `asking for an adapter failed: ${failure}` : `no WebGPU adapter: ${diagnosis.reason}`,
        fix: diagnosis.fix,
      },
      adapter: null,
      gpu: d.gpu,
    };
    return probed;
  }
  const summary = summariseAdapter(adapter);
  const allowSoftware = webGpuSetting() === 'software';
  const usable = !summary.software || allowSoftware;
  probed = {
    probe: {
      installed: true,
      loaded: true,
      adapter: summary,
      usable,
      reason: usable
        ? ''
        : `only a software adapter (${adapterName(summary)}): it runs on the CPU, slower than the CPU backends`,
      fix: usable
        ? ''
        : "install your GPU's driver (Linux: its Vulkan driver); MASKLOOP_WEBGPU=software uses the software adapter anyway",
    },
    adapter,
    gpu: d.gpu,
  };
  return probed;
}

/**
 * Makes the probed adapter the one TensorFlow.js's WebGPU backend finds: `navigator.gpu` (absent under Node
 * 20) answers with it, and WebGPU's enum objects (GPUBufferUsage, ...) become globals, as in a browser.
 * Returns false when there is no usable adapter.
 */
export async function installWebGpuGlobals(): Promise<boolean> {
  const found = await findAdapter();
  const d = loadDawn();
  if (!found.probe.usable || !found.adapter || !d) return false;
  const adapter = found.adapter;
  for (const [name, value] of Object.entries(d.binding.globals))
    if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  const gpu = { requestAdapter: () => Promise.resolve(adapter), getPreferredCanvasFormat: () => 'rgba8unorm' };
  const existing = (globalThis as { navigator?: object }).navigator;
  if (existing) Object.defineProperty(existing, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  return true;
}
