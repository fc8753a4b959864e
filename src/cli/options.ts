// What the CLI's commands share: their common options, the fine-tune and network options, and running a
// command with its context.
import { Command, Option } from 'commander';
import { DEFAULT_ENCODER, ENCODER_KINDS } from '../protocol/encoderKind';
import {
  BACKEND_ORDER,
  DEFAULT_FINE_TUNE,
  MIN_CROP_SIZE,
  PRETRAINED_CROP,
  SCRATCH_CROP,
  type FineTuneSettings,
} from '../protocol/settings';
import type { NetworkOptions } from '../engine/network/resUNet';
import { CliContext, choiceArg, intArg, numArg, type CommonOptions } from './cliContext';

export type Opts = CommonOptions & Record<string, string | boolean | undefined>;

/** `--backend`: auto or one of the backends, in their order of preference. */
export function backendOption(): Option {
  return new Option('--backend <name>', 'force a backend').choices(['auto', ...BACKEND_ORDER]);
}

export function common(cmd: Command, withModel = true): Command {
  if (withModel) cmd.option('--model <dir>', 'model folder (default .maskloop/model under the current folder)');
  return cmd
    .addOption(backendOption())
    .addOption(
      new Option(
        '--encoder <kind>',
        `encoder of a model created by this command (default ${DEFAULT_ENCODER}: the shipped pretrained MobileNetV2; distilled-resnet: the shipped ResNet-style encoder distilled from it; scratch: random residual encoder)`,
      ).choices([...ENCODER_KINDS]),
    )
    .option('--json', 'print JSON on stdout');
}

export function settingsFrom(o: Opts): Partial<FineTuneSettings> {
  const s: Partial<FineTuneSettings> = {};
  const set = <K extends keyof FineTuneSettings>(k: K, v: FineTuneSettings[K] | undefined): void => {
    if (v !== undefined) s[k] = v;
  };
  set('epochs', intArg('--epochs', o.epochs, 0));
  set('seed', intArg('--seed', o.seed));
  set('stepsPerEpoch', intArg('--steps', o.steps, 1));
  set('batchSize', intArg('--batch', o.batch, 1));
  set('cropSize', intArg('--crop', o.crop, MIN_CROP_SIZE));
  set('learningRate', numArg('--lr', o.lr));
  set('boundaryWeight', numArg('--boundary-weight', o.boundaryWeight, 0));
  set('boundaryBias', numArg('--boundary-bias', o.boundaryBias, 0, 1));
  set('diceWeight', numArg('--dice-weight', o.diceWeight, 0));
  set('weightDecay', numArg('--weight-decay', o.weightDecay, 0));
  set('colorJitter', numArg('--color-jitter', o.colorJitter, 0, 1));
  set('hueJitter', o.hueJitter === 'auto' ? 'auto' : numArg('--hue-jitter', o.hueJitter, 0, 1));
  set('patience', intArg('--patience', o.patience, 1));
  set('optimizer', choiceArg('--optimizer', o.optimizer, ['adam', 'sgd'] as const));
  set('encoderStages', intArg('--encoder-stages', o.encoderStages, 0));
  set('priorCorrection', numArg('--prior-correction', o.priorCorrection, 0));
  if (o.pixelHead === false) set('pixelHead', false);
  set('gradientThreads', intArg('--threads', o.threads, 1));
  set('trainingRuntime', choiceArg('--training-runtime', o.trainingRuntime, ['auto', 'tfjs'] as const));
  if (o.force) set('force', true);
  return s;
}

export function trainingOptions(cmd: Command): Command {
  return cmd
    .option('--classes <file>', 'class list (labelme labels.txt: __ignore__, _background_, then one name a line)')
    .option(
      '--epochs <n>',
      `epochs of decoder training (default ${DEFAULT_FINE_TUNE.epochs}); 0 fits only the context head of a pretrained-encoder model, in seconds`,
    )
    .option('--steps <n>', 'optimiser steps per epoch (default: automatic)')
    .option('--batch <n>', `crops per step (default ${DEFAULT_FINE_TUNE.batchSize})`)
    .option(
      '--crop <px>',
      `training crop size (default: automatic, ${PRETRAINED_CROP} with a pretrained encoder, ${SCRATCH_CROP} from scratch)`,
    )
    .option('--lr <rate>', `learning rate (default ${DEFAULT_FINE_TUNE.learningRate})`)
    .addOption(new Option('--optimizer <name>', 'optimiser').choices(['adam', 'sgd']))
    .option('--boundary-weight <w>', `weight of the boundary loss term (default ${DEFAULT_FINE_TUNE.boundaryWeight})`)
    .option(
      '--boundary-bias <share>',
      `share of training crops centred on a class edge, 0-1 (default ${DEFAULT_FINE_TUNE.boundaryBias})`,
    )
    .option('--dice-weight <w>', `weight of the soft Dice loss term (default ${DEFAULT_FINE_TUNE.diceWeight})`)
    .option('--weight-decay <w>', `L2 weight decay on convolution kernels (default ${DEFAULT_FINE_TUNE.weightDecay})`)
    .option(
      '--color-jitter <amount>',
      `brightness/contrast jitter of training crops, 0-1 (default ${DEFAULT_FINE_TUNE.colorJitter})`,
    )
    .option(
      '--hue-jitter <amount>',
      'hue/saturation jitter of training crops, 0-1: turn colours by up to this share of 180 degrees (default auto: 0 when two classes differ in colour across the training masks, else 0.5)',
    )
    .option(
      '--patience <n>',
      `epochs without a better validation boundary IoU before stopping early (default ${DEFAULT_FINE_TUNE.patience})`,
    )
    .option(
      '--prior-correction <strength>',
      'class-prior correction of the suggestions after training on boundary-biased crops (default 1; 0 = off)',
    )
    .option(
      '--encoder-stages <n>',
      'full fine-tune: unfreeze this many stages of the pretrained encoder, deepest first, one at a time (default 0: frozen, the fast mode; all 4 on a GPU)',
    )
    .option('--seed <n>', 'random seed (default 0)')
    .option(
      '--threads <n>',
      'threads that compute each training step on WebAssembly, each on its share of the batch: 1 or 2 (default 2 with two cores or more; always 1 on native TensorFlow, which uses every core itself); not used when the steps run through onnxruntime',
    )
    .option(
      '--training-runtime <name>',
      'where the training steps run: auto (through onnxruntime, native kernels on every core, where it is installed and covers the network: a frozen pretrained encoder without decoder dropout; else TF.js) or tfjs',
    )
    .option(
      '--no-pixel-head',
      'do not fit the pixel head (a per-pixel read-out of filter features of the image and the network output, kept when validation does not get worse)',
    )
    .option(
      '--no-residual',
      'a model created by this command: decoder blocks without their identity shortcuts (the ablation)',
    )
    .option(
      '--decoder-dropout <rate>',
      'a model created by this command: spatial dropout in the decoder blocks while training, 0-0.9 (default 0)',
    );
}

/** Architecture options of a model this command creates. */
export function networkFrom(o: Opts): NetworkOptions {
  const dropout = numArg('--decoder-dropout', o.decoderDropout, 0, 0.9);
  return {
    ...(o.residual === false ? { residual: false } : {}),
    ...(dropout !== undefined ? { decoderDropout: dropout } : {}),
  };
}

export async function withContext(o: Opts, fn: (ctx: CliContext) => Promise<void>): Promise<void> {
  const ctx = new CliContext(o);
  try {
    await fn(ctx);
  } finally {
    ctx.dispose();
  }
}
