import * as path from 'node:path';
import { isBackendChoice } from '../protocol/settings';
import { ENCODER_KINDS, isEncoderKind, type EncoderKind } from '../protocol/encoderKind';
import { type ClassList } from '../masks/classList';
import { readClassList } from '../io/classListFile';
import { ModelClient } from '../modelServer/modelClient';
import { ProgressReporter } from './progressReporter';

/** A usage mistake: exit code 2. */
export class UsageError extends Error {}

/** A batch that finished what it could but skipped bad items (each already reported): exit code 1. */
export class BatchIncomplete extends Error {}

export interface CommonOptions {
  model?: string;
  backend?: string;
  json?: boolean;
  classes?: string;
  encoder?: string;
}

/** What every command shares: the model client, the model folder, output mode and progress. */
export class CliContext {
  readonly client: ModelClient;
  readonly json: boolean;
  readonly progress: ProgressReporter;
  readonly modelDir: string;

  constructor(readonly options: CommonOptions) {
    const backend = options.backend ?? process.env.MASKLOOP_BACKEND ?? 'auto';
    if (!isBackendChoice(backend))
      throw new UsageError(`--backend ${backend}: choose auto, webgpu, tensorflow-gpu, tensorflow, wasm or cpu`);
    this.json = Boolean(options.json);
    this.progress = new ProgressReporter(this.json);
    this.client = new ModelClient({
      backend,
      log: process.env.MASKLOOP_DEBUG ? (l) => process.stderr.write(`[model] ${l}\n`) : undefined,
    });
    this.modelDir = path.resolve(options.model ?? path.join('.maskloop', 'model'));
    if (options.encoder !== undefined && !isEncoderKind(options.encoder))
      throw new UsageError(`--encoder ${options.encoder}: choose ${ENCODER_KINDS.join(', ')}`);
    this.encoder = options.encoder;
  }

  /** The encoder of a model this command creates; undefined = the default. */
  readonly encoder: EncoderKind | undefined;

  /** The dataset manifest sits beside the model folder (`.maskloop/dataset.json` by default). */
  get datasetManifest(): string {
    return path.join(path.dirname(this.modelDir), 'dataset.json');
  }

  /**
   * The folder the dataset manifest keys images by: the one holding `.maskloop/` (the model folder's
   * grandparent), never the current folder, so the same images keep their splits from wherever the command runs.
   */
  get datasetRoot(): string {
    return path.dirname(path.dirname(this.modelDir));
  }

  async classes(): Promise<ClassList | undefined> {
    return this.options.classes ? readClassList(this.options.classes) : undefined;
  }

  /** Human text on stdout unless --json. */
  say(text: string): void {
    if (!this.json) process.stdout.write(text + '\n');
  }

  /** A warning on stderr (kept out of --json's stdout); nothing for an empty text. */
  warn(text: string): void {
    if (text) process.stderr.write(`maskloop: warning: ${text}\n`);
  }

  out(value: unknown): void {
    if (this.json) process.stdout.write(JSON.stringify(value, null, 2) + '\n');
  }

  dispose(): void {
    this.progress.stop();
    this.client.dispose();
  }
}

export function fmt(v: number | undefined | null, digits = 3): string {
  return v === undefined || v === null || Number.isNaN(v) ? '-' : v.toFixed(digits);
}

/**
 * An option's text as commander parsed it: undefined when absent; a flag given where text was expected is a
 * usage error (commander's types say `unknown`, so nothing is cast).
 */
export function textArg(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new UsageError(`${name} needs a value`);
  return value;
}

/** An option that commander requires or defaults, so that it is always there. */
export function requiredArg(name: string, value: unknown): string {
  const text = textArg(name, value);
  if (text === undefined) throw new UsageError(`${name} is required`);
  return text;
}

/** One of a fixed set of words (commander's `choices` checked it already). */
export function choiceArg<T extends string>(name: string, value: unknown, choices: readonly T[]): T | undefined {
  const text = textArg(name, value);
  if (text === undefined) return undefined;
  if (!(choices as readonly string[]).includes(text))
    throw new UsageError(`${name} must be one of ${choices.join(', ')}, got "${text}"`);
  return text as T;
}

export function intArg(name: string, value: unknown, min = 0): number | undefined {
  const text = textArg(name, value);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`${name} must be a whole number of at least ${min}, got "${text}"`);
  return n;
}

/** One of a fixed set of words, in an option that commander requires. */
export function requiredChoice<T extends string>(name: string, value: unknown, choices: readonly T[]): T {
  return choiceArg(name, requiredArg(name, value), choices) as T;
}

/** A whole-number option that commander requires or defaults. */
export function requiredInt(name: string, value: unknown, min = 0): number {
  return intArg(name, requiredArg(name, value), min) as number;
}

/** A number argument: positive by default, or within [min, max] when a minimum is given. */
export function numArg(name: string, value: unknown, min?: number, max = Infinity): number | undefined {
  const text = textArg(name, value);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (min === undefined) {
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a positive number, got "${text}"`);
  } else if (!Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(
      `${name} must be a number ${max === Infinity ? `of at least ${min}` : `from ${min} to ${max}`}, got "${text}"`,
    );
  }
  return n;
}
