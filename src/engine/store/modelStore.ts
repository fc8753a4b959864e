import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { syncDir, writeFileAtomic, writeJsonAtomic } from '../../io/atomicWrite';
import { stableStringify } from '../../masks/stableJson';
import { buildNetwork, encoderProvenance } from '../network/networks';
import type { ClassList } from '../../masks/classList';
import type { ModelMeta, NetworkConfig, VersionManifest } from '../../protocol/modelTypes';

export type { ModelMeta, VersionManifest };

/** Whether every float32 in a weights buffer (float32 throughout, as the size check above requires) is finite. */
function finiteFloats(bytes: Uint8Array): boolean {
  const floats = new Float32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 4));
  for (let i = 0; i < floats.length; i++) if (!Number.isFinite(floats[i])) return false;
  return true;
}

export class ModelStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelStoreError';
  }
}

interface ModelJson {
  format: 'layers-model';
  generatedBy: string;
  convertedBy: null;
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  userDefinedMetadata: { maskloop: ModelMeta };
}

export const versionName = (v: number): string => String(v).padStart(4, '0');

async function captureArtifacts(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save({
    save: async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  });
  if (!captured) throw new Error('the model produced no artifacts');
  return captured;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The versioned model store. `<dir>/model.json` is the current model (TF.js layers format); its
 * weights live in `versions/NNNN/weights.bin`. Every version is a complete folder written under a
 * temporary name and renamed into place; the current model changes by one atomic rename of model.json,
 * so a process killed at any moment leaves a loadable current model.
 */
export class ModelStore {
  readonly dir: string;
  readonly versionsDir: string;
  readonly currentFile: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.versionsDir = path.join(this.dir, 'versions');
    this.currentFile = path.join(this.dir, 'model.json');
  }

  exists(): boolean {
    return fs.existsSync(this.currentFile);
  }

  /** Removes temporary files and folders left by writers that died. */
  async cleanStale(): Promise<void> {
    const sweep = async (dir: string): Promise<void> => {
      let names: string[];
      try {
        names = await fs.promises.readdir(dir);
      } catch {
        return;
      }
      for (const name of names) {
        const m = /\.tmp-(\d+)-\d+$/.exec(name);
        if (m && !isAlive(Number(m[1]))) await fs.promises.rm(path.join(dir, name), { recursive: true, force: true });
      }
    };
    await sweep(this.dir);
    await sweep(this.versionsDir);
  }

  /** Version numbers with a complete folder on disk, ascending. */
  async listVersions(): Promise<number[]> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.versionsDir);
    } catch {
      return [];
    }
    return names
      .filter((n) => /^\d{4,}$/.test(n))
      .map(Number)
      .sort((a, b) => a - b);
  }

  async readVersionManifest(version: number): Promise<VersionManifest> {
    const file = path.join(this.versionsDir, versionName(version), 'manifest.json');
    try {
      return JSON.parse(await fs.promises.readFile(file, 'utf8')) as VersionManifest;
    } catch (err) {
      throw new ModelStoreError(`${file}: cannot read the version manifest (${(err as Error).message})`);
    }
  }

  private wayBack(): string {
    return `run "maskloop versions --model ${this.dir}" to list versions and "maskloop rollback --to N --model ${this.dir}" to restore one, or delete ${this.dir} to start a new model`;
  }

  private async readModelJson(file: string): Promise<ModelJson> {
    let text: string;
    try {
      text = await fs.promises.readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ModelStoreError(
        code === 'ENOENT' ? `${file}: no model here` : `${file}: cannot read the model (${code ?? String(err)})`,
      );
    }
    let json: ModelJson;
    try {
      json = JSON.parse(text) as ModelJson;
    } catch (err) {
      throw new ModelStoreError(`${file}: the model file is corrupt (${(err as Error).message}); ${this.wayBack()}`);
    }
    if (
      json.userDefinedMetadata?.maskloop?.format !== 'maskloop-model' ||
      !json.modelTopology ||
      !Array.isArray(json.weightsManifest)
    ) {
      throw new ModelStoreError(
        `${file}: not a maskloop model (missing topology, weights or maskloop metadata); ${this.wayBack()}`,
      );
    }
    return json;
  }

  /** Loads a model.json and its weights; every failure names the file and says how to recover. */
  private async loadFrom(file: string): Promise<{ model: tfl.LayersModel; meta: ModelMeta }> {
    const json = await this.readModelJson(file);
    const base = path.dirname(file);
    const weightSpecs: tf.io.WeightsManifestEntry[] = [];
    const buffers: Uint8Array[] = [];
    for (const group of json.weightsManifest) {
      weightSpecs.push(...group.weights);
      for (const p of group.paths) {
        const wfile = path.resolve(base, p);
        try {
          buffers.push(await fs.promises.readFile(wfile));
        } catch (err) {
          throw new ModelStoreError(
            `${wfile}: the model's weights are missing or unreadable (${(err as NodeJS.ErrnoException).code ?? String(err)}); ${this.wayBack()}`,
          );
        }
      }
    }
    const total = buffers.reduce((s, b) => s + b.byteLength, 0);
    const expected = weightSpecs.reduce((s, w) => s + w.shape.reduce((a, d) => a * d, 1) * 4, 0);
    if (total !== expected) {
      throw new ModelStoreError(
        `${file}: the weights hold ${total} bytes but the model needs ${expected}; the weights file is truncated or from another model; ${this.wayBack()}`,
      );
    }
    const weightData = new Uint8Array(total);
    let off = 0;
    for (const b of buffers) {
      weightData.set(b, off);
      off += b.byteLength;
    }
    const meta = json.userDefinedMetadata.maskloop;
    if (
      meta.weightsSha256 !== undefined &&
      createHash('sha256').update(weightData).digest('hex') !== meta.weightsSha256
    ) {
      throw new ModelStoreError(
        `${file}: the weights do not match their checksum (changed or damaged on disk since they were written); ${this.wayBack()}`,
      );
    }
    // A weight that is not finite would make every suggestion background.
    if (!finiteFloats(weightData))
      throw new ModelStoreError(
        `${file}: the weights hold a value that is not a number (NaN or infinity); ${this.wayBack()}`,
      );
    try {
      const model = await tfl.loadLayersModel(
        tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData: weightData.buffer }),
      );
      return { model, meta };
    } catch (err) {
      throw new ModelStoreError(`${file}: the model could not be built (${(err as Error).message}); ${this.wayBack()}`);
    }
  }

  /** Loads the current model. */
  async loadCurrent(): Promise<{ model: tfl.LayersModel; meta: ModelMeta }> {
    return this.loadFrom(this.currentFile);
  }

  async loadVersion(version: number): Promise<{ model: tfl.LayersModel; meta: ModelMeta }> {
    return this.loadFrom(path.join(this.versionsDir, versionName(version), 'model.json'));
  }

  async currentMeta(): Promise<ModelMeta> {
    return (await this.readModelJson(this.currentFile)).userDefinedMetadata.maskloop;
  }

  /**
   * model.json is missing while versions are stored (deleted by hand, or lost): a new model would collide with
   * version 0, so the way back is named instead.
   */
  async checkNotOrphaned(): Promise<void> {
    if (this.exists()) return;
    const versions = await this.listVersions();
    if (versions.length > 0) {
      throw new ModelStoreError(
        `${this.currentFile}: missing, but ${versions.length} version(s) are stored in ${this.versionsDir} (latest ${versions[versions.length - 1]}): run "maskloop rollback --to ${versions[versions.length - 1]} --model ${this.dir}" to make one current, or move ${this.dir} away to start a new model`,
      );
    }
  }

  /** Cold start: builds the network (pretrained encoder or not) with an untrained decoder and stores it as version 0 (current). */
  async createInitial(
    network: NetworkConfig,
    classes: ClassList,
    backend: string,
  ): Promise<{ model: tfl.LayersModel; meta: ModelMeta }> {
    const model = await buildNetwork(network);
    const meta: ModelMeta = {
      format: 'maskloop-model',
      formatVersion: 1,
      version: 0,
      parent: null,
      createdAt: new Date().toISOString(),
      network,
      classes,
      encoder: encoderProvenance(network),
      trained: false,
    };
    await this.writeVersion(model, meta, {
      version: 0,
      parent: null,
      createdAt: meta.createdAt,
      backend,
      accepted: true,
      reason:
        'initial model with an untrained decoder (cold start): suggestions become useful after the first fine-tune',
    });
    await this.setCurrent(0);
    return { model, meta };
  }

  /** Next free version number. */
  async nextVersion(): Promise<number> {
    const versions = await this.listVersions();
    return versions.length === 0 ? 0 : versions[versions.length - 1] + 1;
  }

  /** Writes a complete version folder (model.json, weights.bin, manifest.json) under a temporary name, then renames it into place. */
  async writeVersion(model: tfl.LayersModel, meta: ModelMeta, manifest: VersionManifest): Promise<void> {
    const artifacts = await captureArtifacts(model);
    const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
    if (!finiteFloats(weights))
      throw new ModelStoreError(
        `version ${meta.version} was not stored: its weights hold a value that is not a number (the training diverged; try a lower --lr)`,
      );
    meta = { ...meta, weightsSha256: createHash('sha256').update(weights).digest('hex') };
    const finalDir = path.join(this.versionsDir, versionName(meta.version));
    if (fs.existsSync(finalDir))
      throw new ModelStoreError(`${finalDir} already exists; another fine-tune may be writing to this model`);
    await fs.promises.mkdir(this.versionsDir, { recursive: true });
    const tmpDir = path.join(this.versionsDir, `.${versionName(meta.version)}.tmp-${process.pid}-${Date.now() % 1e9}`);
    await fs.promises.mkdir(tmpDir);
    const modelJson: ModelJson = {
      format: 'layers-model',
      generatedBy: `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
      convertedBy: null,
      modelTopology: artifacts.modelTopology as object,
      weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      userDefinedMetadata: { maskloop: meta },
    };
    const writeSynced = async (name: string, data: Uint8Array | string): Promise<void> => {
      const h = await fs.promises.open(path.join(tmpDir, name), 'w');
      try {
        await h.writeFile(data);
        await h.sync();
      } finally {
        await h.close();
      }
    };
    try {
      await writeSynced('weights.bin', weights);
      await writeSynced('model.json', stableStringify(modelJson) + '\n');
      await writeSynced('manifest.json', stableStringify(manifest) + '\n');
      await syncDir(tmpDir);
      await fs.promises.rename(tmpDir, finalDir);
    } catch (err) {
      // A full disk or a refused write: the half-written version goes, the stored ones and model.json stay.
      await fs.promises.rm(tmpDir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
    await syncDir(this.versionsDir);
  }

  /** Makes a stored version current with one atomic rename of model.json. */
  async setCurrent(version: number): Promise<ModelMeta> {
    const vfile = path.join(this.versionsDir, versionName(version), 'model.json');
    const json = await this.readModelJson(vfile);
    json.weightsManifest = json.weightsManifest.map((g) => ({
      ...g,
      paths: g.paths.map((p) => `versions/${versionName(version)}/${p}`),
    }));
    await writeFileAtomic(this.currentFile, stableStringify(json) + '\n');
    return json.userDefinedMetadata.maskloop;
  }

  /** Rolls back (or forward) to any stored version; its weights are checked before it becomes current. */
  async rollback(version: number): Promise<ModelMeta> {
    const versions = await this.listVersions();
    if (!versions.includes(version))
      throw new ModelStoreError(
        `${this.dir}: no version ${version}; stored versions: ${versions.join(', ') || 'none'}`,
      );
    const { model } = await this.loadVersion(version);
    model.dispose();
    return this.setCurrent(version);
  }

  /** Updates the manifest of a stored version (e.g. to record a rollback). */
  async writeVersionManifest(manifest: VersionManifest): Promise<void> {
    await writeJsonAtomic(path.join(this.versionsDir, versionName(manifest.version), 'manifest.json'), manifest);
  }
}
