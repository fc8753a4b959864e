// Typed access to the `maskloop.*` settings.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { BackendChoice } from '../protocol/settings';
import { DEFAULT_ENCODER, isEncoderKind, type EncoderKind } from '../protocol/encoderKind';
import { DEFAULT_FINE_TUNE, EDITOR_DEFAULTS, MIN_CROP_SIZE, type FineTuneSettings } from '../protocol/settings';
import { parseClassList, vocColor, type ClassInfo } from '../masks/classList';
import { DEFAULT_MASK_TEMPLATE } from './editor/maskPath';

export interface MaskloopSettings {
  classes: ClassInfo[];
  maskPath: string;
  modelFolder: string;
  backend: BackendChoice;
  /** Encoder of a model the fine-tune command creates (an existing model keeps its own). */
  encoder: EncoderKind;
  prelabelOnOpen: boolean;
  /** Suggestions follow a neighbouring frame's reviewed mask (images of a folder are a sequence in name order). */
  followNeighbours: boolean;
  maskOpacity: number;
  wandTolerance: number;
  fineTune: Partial<FineTuneSettings>;
}

const BACKENDS: BackendChoice[] = ['auto', 'webgpu', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

/** The workspace folder an image belongs to (or the image's own folder outside any workspace). */
export function workspaceRootFor(file: vscode.Uri): string {
  return (
    vscode.workspace.getWorkspaceFolder(file)?.uri.fsPath ??
    vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ??
    path.dirname(file.fsPath)
  );
}

export function readSettings(scope?: vscode.Uri): MaskloopSettings {
  const c = vscode.workspace.getConfiguration('maskloop', scope);
  const backend = c.get<string>('backend', 'auto');
  const encoder = c.get<string>('encoder', DEFAULT_ENCODER);
  const root = scope ? workspaceRootFor(scope) : (vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd());
  const modelFolder = path.resolve(root, c.get<string>('modelFolder', '.maskloop/model'));
  return {
    // In restricted mode nothing is read from the model folder, not even its class list.
    classes: resolveClasses(
      c.get<{ name: string; color?: string }[]>('classes', []),
      root,
      vscode.workspace.isTrusted ? modelFolder : null,
    ),
    maskPath: c.get<string>('maskPath', DEFAULT_MASK_TEMPLATE),
    modelFolder,
    backend: BACKENDS.includes(backend as BackendChoice) ? (backend as BackendChoice) : 'auto',
    encoder: isEncoderKind(encoder) ? encoder : DEFAULT_ENCODER,
    prelabelOnOpen: c.get<boolean>('prelabelOnOpen', true),
    followNeighbours: c.get<boolean>('followNeighbours', true),
    maskOpacity: Math.min(1, Math.max(0, c.get<number>('maskOpacity', EDITOR_DEFAULTS.maskOpacity))),
    wandTolerance: Math.min(255, Math.max(0, c.get<number>('wandTolerance', EDITOR_DEFAULTS.wandTolerance))),
    fineTune: {
      epochs: c.get<number>('fineTune.epochs', DEFAULT_FINE_TUNE.epochs),
      learningRate: c.get<number>('fineTune.learningRate', DEFAULT_FINE_TUNE.learningRate),
      // Unset: automatic (256 with a pretrained encoder, 128 from scratch).
      ...(typeof c.get('fineTune.cropSize') === 'number'
        ? { cropSize: Math.max(MIN_CROP_SIZE, c.get<number>('fineTune.cropSize', 0)) }
        : {}),
      batchSize: c.get<number>('fineTune.batchSize', DEFAULT_FINE_TUNE.batchSize),
      boundaryWeight: c.get<number>('fineTune.boundaryLossWeight', DEFAULT_FINE_TUNE.boundaryWeight),
      // Unset: automatic (off when the classes differ in colour, else 0.5).
      ...(typeof c.get('fineTune.hueJitter') === 'number'
        ? { hueJitter: Math.min(1, Math.max(0, c.get<number>('fineTune.hueJitter', 0))) }
        : {}),
      // Unset: the engine's default (frozen on CPU, every stage on a GPU).
      ...(c.get<number | null>('fineTune.encoderStages', null) !== null
        ? { encoderStages: c.get<number>('fineTune.encoderStages') }
        : {}),
      pixelHead: c.get<boolean>('fineTune.pixelHead', DEFAULT_FINE_TUNE.pixelHead),
      gradientThreads: Math.min(2, Math.max(0, c.get<number>('fineTune.threads', DEFAULT_FINE_TUNE.gradientThreads))),
    },
  };
}

/**
 * The class palette: the `maskloop.classes` setting when set (index = position, 0 = background); else the
 * current model's classes; else labels.txt or classes.txt at the workspace root; else background + object.
 */
export function resolveClasses(
  setting: { name: string; color?: string }[],
  root: string,
  modelFolder: string | null,
): ClassInfo[] {
  if (Array.isArray(setting) && setting.length > 0) {
    return setting.map((c, index) => ({
      index,
      name: String(c.name ?? `class ${index}`),
      color: /^#[0-9a-f]{6}$/i.test(c.color ?? '') ? c.color! : vocColor(index),
    }));
  }
  try {
    if (!modelFolder) throw new Error('restricted');
    const model = JSON.parse(fs.readFileSync(path.join(modelFolder, 'model.json'), 'utf8')) as {
      userDefinedMetadata?: { maskloop?: { classes?: { classes?: ClassInfo[] } } };
    };
    const classes = model.userDefinedMetadata?.maskloop?.classes?.classes;
    if (Array.isArray(classes) && classes.length > 1) return classes;
  } catch {
    // No model yet, or not readable: the next sources decide.
  }
  for (const name of ['labels.txt', 'classes.txt']) {
    const file = path.join(root, name);
    if (fs.existsSync(file)) {
      try {
        return parseClassList(fs.readFileSync(file, 'utf8'), file).classes;
      } catch {
        // A bad list is reported by the CLI; the editor falls back to the default palette.
      }
    }
  }
  return [
    { index: 0, name: 'background', color: '#000000' },
    { index: 1, name: 'object', color: vocColor(1) },
  ];
}
