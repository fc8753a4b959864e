import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_ENCODER, ENCODER_KINDS } from '../protocol/encoderKind';
import {
  DEFAULT_FINE_TUNE,
  MIN_CROP_SIZE,
  PRETRAINED_CROP,
  SCRATCH_CROP,
  type FineTuneSettings,
} from '../protocol/settings';
import type { NetworkOptions } from '../engine/network/resUNet';
import { classListFromMasks } from '../masks/classList';
import { expandImageArgs, orphanNote, pairImagesWithMasks, stemOf } from '../io/datasetPairs';
import { describeFsError } from '../masks/fsErrors';
import { InputError } from '../masks/inputError';
import { readMask, writeMask } from '../io/maskIO';
import { parseValueMap } from '../masks/maskValueMap';
import { BACKEND_ORDER, type BackendName, type BackendReport } from '../protocol/settings';
import { ModelClient, ModelRequestError } from '../modelServer/modelClient';
import type { BenchResult } from '../protocol/modelProtocol';
import { BatchIncomplete, CliContext, fmt, intArg, numArg, UsageError, type CommonOptions } from './cliContext';
import { runDemo } from './demo';
import { readSceneLibrary, writeSceneData } from './sceneData';
import { simulateLoop } from './simulateLoop';
import { exportMasks, importLabels, reportLines, type FormatReport } from '../formats/formatFiles';
import { failedItems, FORMATS, IMPORT_SOURCES, type FormatName, type ImportSource } from '../formats/formatTypes';

type Opts = CommonOptions & Record<string, string | boolean | undefined>;

function common(cmd: Command, withModel = true): Command {
  if (withModel) cmd.option('--model <dir>', 'model folder (default .maskloop/model under the current folder)');
  return cmd
    .addOption(
      new Option('--backend <name>', 'force a backend').choices([
        'auto',
        'tensorflow-gpu',
        'tensorflow',
        'wasm',
        'cpu',
      ]),
    )
    .addOption(
      new Option(
        '--encoder <kind>',
        `encoder of a model created by this command (default ${DEFAULT_ENCODER}: the shipped pretrained MobileNetV2; distilled-resnet: the shipped ResNet-style encoder distilled from it; scratch: random residual encoder)`,
      ).choices([...ENCODER_KINDS]),
    )
    .option('--json', 'print JSON on stdout');
}

function settingsFrom(o: Opts): Partial<FineTuneSettings> {
  const s: Partial<FineTuneSettings> = {};
  const set = <K extends keyof FineTuneSettings>(k: K, v: FineTuneSettings[K] | undefined): void => {
    if (v !== undefined) s[k] = v;
  };
  set('epochs', intArg('--epochs', o.epochs as string | undefined, 0));
  set('seed', intArg('--seed', o.seed as string | undefined));
  set('stepsPerEpoch', intArg('--steps', o.steps as string | undefined, 1));
  set('batchSize', intArg('--batch', o.batch as string | undefined, 1));
  set('cropSize', intArg('--crop', o.crop as string | undefined, MIN_CROP_SIZE));
  set('learningRate', numArg('--lr', o.lr as string | undefined));
  set('boundaryWeight', numArg('--boundary-weight', o.boundaryWeight as string | undefined, 0));
  set('boundaryBias', numArg('--boundary-bias', o.boundaryBias as string | undefined, 0, 1));
  set('diceWeight', numArg('--dice-weight', o.diceWeight as string | undefined, 0));
  set('weightDecay', numArg('--weight-decay', o.weightDecay as string | undefined, 0));
  set('colorJitter', numArg('--color-jitter', o.colorJitter as string | undefined, 0, 1));
  set('hueJitter', o.hueJitter === 'auto' ? 'auto' : numArg('--hue-jitter', o.hueJitter as string | undefined, 0, 1));
  set('patience', intArg('--patience', o.patience as string | undefined, 1));
  if (o.optimizer) set('optimizer', o.optimizer as 'adam' | 'sgd');
  set('encoderStages', intArg('--encoder-stages', o.encoderStages as string | undefined, 0));
  set('priorCorrection', numArg('--prior-correction', o.priorCorrection as string | undefined, 0));
  if (o.force) set('force', true);
  return s;
}

function trainingOptions(cmd: Command): Command {
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
      '--no-residual',
      'a model created by this command: decoder blocks without their identity shortcuts (the ablation)',
    )
    .option(
      '--decoder-dropout <rate>',
      'a model created by this command: spatial dropout in the decoder blocks while training, 0-0.9 (default 0)',
    );
}

/** Architecture options of a model this command creates. */
function networkFrom(o: Opts): NetworkOptions {
  const dropout = numArg('--decoder-dropout', o.decoderDropout as string | undefined, 0, 0.9);
  return {
    ...(o.residual === false ? { residual: false } : {}),
    ...(dropout !== undefined ? { decoderDropout: dropout } : {}),
  };
}

async function withContext(o: Opts, fn: (ctx: CliContext) => Promise<void>): Promise<void> {
  const ctx = new CliContext(o);
  try {
    await fn(ctx);
  } finally {
    ctx.dispose();
  }
}

const program = new Command();
program
  .name('maskloop')
  .description('Model-in-the-loop image segmentation: pre-label, fine-tune, evaluate, simulate, benchmark.')
  .exitOverride();

common(program.command('info').description('backend in use and why, versions, model summary')).action(async (o: Opts) =>
  withContext(o, async (ctx) => {
    const info = await ctx.client.request('info', {});
    let model = null;
    if (fs.existsSync(path.join(ctx.modelDir, 'model.json')))
      model = await ctx.client.request('describe', { modelDir: ctx.modelDir });
    ctx.out({ ...info, model });
    ctx.say(
      `backend: ${info.backend.label} [${info.backend.backend}]${info.backend.simd !== undefined ? ` (SIMD ${info.backend.simd ? 'on' : 'off'}, ${info.backend.threads} thread)` : ''}`,
    );
    for (const a of info.backend.attempts) ctx.say(`  ${a.ok ? 'used   ' : 'skipped'} ${a.backend}: ${a.reason}`);
    ctx.say(`tfjs ${info.backend.tfjsVersion}, node ${info.node}`);
    ctx.say(
      `pre-labels with: ${info.inference.runtime} (${info.inference.reason}); fine-tunes with TF.js ${info.backend.backend}`,
    );
    if (model) {
      const encoder = model.meta.network.encoder ?? 'scratch';
      const kind =
        encoder === 'mobilenetv2'
          ? 'pretrained MobileNetV2 encoder under a residual decoder'
          : encoder === 'distilled-resnet'
            ? 'distilled ResNet-style encoder under a residual decoder'
            : `${model.meta.network.residual ? 'residual' : 'plain'} U-Net`;
      ctx.say(
        `model: ${ctx.modelDir} version ${model.meta.version}${model.meta.trained ? '' : ' (untrained)'}, ${kind}, ${model.parameters} parameters, ${model.gflopsAt512.toFixed(2)} GFLOP per 512x512 image`,
      );
      ctx.say(`encoder weights: ${model.meta.encoder}`);
      ctx.say(`classes: ${model.meta.classes.classes.map((c) => `${c.index}=${c.name}`).join(', ')}`);
    } else {
      ctx.say(`model: none at ${ctx.modelDir} (a fine-tune creates one)`);
    }
  }),
);

common(
  program
    .command('predict')
    .description('pre-label images: one index PNG per image')
    .argument('<images...>', 'image files or folders')
    .requiredOption('--out <dir>', 'output folder'),
)
  .option('--tile <px>', 'tile size for large images (default 512)')
  .option(
    '--no-mirror',
    "do not average with the mirror image's prediction (half the compute; by default images up to 2048x2048 pixels are)",
  )
  .option(
    '--no-refine',
    "do not refine the suggestion's edges with the guided filter (by default images up to 2048x2048 pixels are)",
  )
  .option('--force', 'overwrite masks that exist in the output folder')
  .action(async (images: string[], o: Opts) =>
    withContext(o, async (ctx) => {
      const files = await expandImageArgs(images);
      if (files.length === 0) throw new InputError(images.join(' '), 'no images found (PNG, JPEG, WebP, TIFF, GIF)');
      const out = path.resolve(o.out as string);
      const targets = predictTargets(files, out, Boolean(o.force));
      await fs.promises.mkdir(out, { recursive: true });
      const tileSize = intArg('--tile', o.tile as string | undefined, 32);
      const written = [];
      const failed: { image: string; why: string }[] = [];
      for (const [i, file] of files.entries()) {
        try {
          const r = await ctx.client.request(
            'predict',
            {
              modelDir: ctx.modelDir,
              image: file,
              tileSize,
              ...(o.mirror === false ? { mirror: false } : {}),
              ...(o.refine === false ? { refine: false } : {}),
            },
            { onProgress: ctx.progress.handle },
          );
          await writeMask(targets[i], { width: r.width, height: r.height, data: r.classMap });
          written.push({ image: file, mask: targets[i], modelVersion: r.modelVersion, seconds: r.seconds });
          ctx.progress.stop();
          ctx.say(
            `[${i + 1}/${files.length}] ${file} -> ${targets[i]} (model version ${r.modelVersion}${r.trained ? '' : ', untrained'}, ${r.seconds.toFixed(2)} s)`,
          );
        } catch (err) {
          // A bad image is reported and the rest are done; no model, a crash or a cancel stops the batch.
          ctx.progress.stop();
          const why =
            err instanceof ModelRequestError && err.kind === 'input'
              ? err.message
              : err instanceof InputError
                ? err.message
                : describeFsError(err);
          if (why === undefined || files.length === 1) throw err;
          failed.push({ image: file, why });
          process.stderr.write(`maskloop: [${i + 1}/${files.length}] skipped ${why}\n`);
        }
      }
      ctx.out({ written, failed });
      if (failed.length > 0)
        throw new BatchIncomplete(
          `${failed.length} of ${files.length} image(s) could not be pre-labelled (listed above); the other ${written.length} were`,
        );
    }),
  );

/**
 * Where `predict` writes each image's mask, checked before anything runs: never onto an input image or into an
 * input image's folder, never two images onto one mask, and never over an existing file without --force.
 */
function predictTargets(files: string[], out: string, force: boolean): string[] {
  // Every target lies in `out`, so refusing an input image's folder also keeps every input image whole.
  if (files.some((f) => path.dirname(path.resolve(f)) === out))
    throw new InputError(
      out,
      'holds the input images: masks written there would replace images or be read as images; choose another --out folder',
    );
  const targets = files.map((f) => path.join(out, `${stemOf(f)}.png`));
  const seen = new Map<string, string>();
  for (const [i, t] of targets.entries()) {
    const other = seen.get(t);
    if (other !== undefined)
      throw new InputError(
        t,
        `${other} and ${files[i]} would both be written here (same stem): predict them into separate folders, or rename one`,
      );
    seen.set(t, files[i]);
  }
  if (!force) {
    const existing = targets.filter((t) => fs.existsSync(t));
    if (existing.length > 0)
      throw new InputError(
        existing[0],
        `exists${existing.length > 1 ? ` (and ${existing.length - 1} more of the masks this would write)` : ''}; a mask there may be someone's corrections: use --force to overwrite, or choose another --out folder`,
      );
  }
  return targets;
}

trainingOptions(
  common(
    program
      .command('finetune')
      .description('fine-tune the model in place on corrected masks: a new model version')
      .requiredOption('--images <dir>', 'image folder')
      .requiredOption('--masks <dir>', 'corrected masks (same stem as the image)'),
  ),
)
  .option('--force', 'make the new version current even if validation boundary IoU fell or pixels to correct rose')
  .action(async (o: Opts) =>
    withContext(o, async (ctx) => {
      const settings = settingsFrom(o);
      const { pairs, unlabelled, orphans } = await pairImagesWithMasks(o.images as string, o.masks as string);
      ctx.warn(orphanNote(orphans, o.images as string));
      if (pairs.length === 0)
        throw new InputError(
          o.masks as string,
          `no masks match the images in ${o.images} (mask = same stem, .png or .mask.png)`,
        );
      ctx.say(`Fine-tuning on ${pairs.length} corrected masks (${unlabelled.length} images without a mask skipped)`);
      const r = await ctx.client.request(
        'fineTune',
        {
          modelDir: ctx.modelDir,
          datasetManifest: ctx.datasetManifest,
          workspaceRoot: ctx.datasetRoot,
          pairs,
          classes: await ctx.classes(),
          createIfMissing: true,
          encoder: ctx.encoder,
          network: networkFrom(o),
          settings,
        },
        { onProgress: ctx.progress.handle },
      );
      ctx.progress.stop();
      ctx.out(r);
      ctx.say(
        `version ${r.version} (parent ${r.parent}) ${r.accepted ? 'is now current' : 'was stored but NOT made current'}: ${r.reason}`,
      );
      ctx.say(r.augmentation);
      if (!r.trainingFit.learnedNothing) ctx.say(`version ${r.version} ${r.trainingFit.reason}`);
      ctx.say(
        `${r.trainImages} train / ${r.validationImages} validation images, ${r.epochs} epochs, ${r.steps} steps, ${r.seconds.toFixed(1)} s`,
      );
      if (r.metricsBefore && r.metricsAfter)
        ctx.say(
          `validation mIoU ${fmt(r.metricsBefore.miou)} -> ${fmt(r.metricsAfter.miou)}, boundary IoU ${fmt(r.metricsBefore.boundaryIoU)} -> ${fmt(r.metricsAfter.boundaryIoU)}`,
        );
    }),
  );

common(
  program
    .command('eval')
    .description('evaluate the model against masks')
    .requiredOption('--images <dir>', 'image folder')
    .requiredOption('--masks <dir>', 'true masks'),
).action(async (o: Opts) =>
  withContext(o, async (ctx) => {
    const { pairs, orphans } = await pairImagesWithMasks(o.images as string, o.masks as string);
    ctx.warn(orphanNote(orphans, o.images as string));
    if (pairs.length === 0) throw new InputError(o.masks as string, `no masks match the images in ${o.images}`);
    const r = await ctx.client.request(
      'evaluate',
      { modelDir: ctx.modelDir, pairs },
      { onProgress: ctx.progress.handle },
    );
    ctx.progress.stop();
    ctx.out({ images: pairs.length, modelVersion: r.modelVersion, ...r.mean, perImage: r.perImage });
    ctx.say(
      `${pairs.length} images, model version ${r.modelVersion}: mIoU ${fmt(r.mean.miou)}, Dice ${fmt(r.mean.dice)}, boundary IoU ${fmt(r.mean.boundaryIoU)} (foreground classes only ${fmt(r.mean.foregroundBoundaryIoU)}), boundary F ${fmt(r.mean.boundaryF)}, pixel accuracy ${fmt(r.mean.pixelAccuracy)}`,
    );
  }),
);

trainingOptions(
  common(
    program
      .command('simulate')
      .description('simulate the labelling loop and print the effort curve')
      .requiredOption('--images <dir>', 'image folder')
      .requiredOption('--masks <dir>', 'true masks'),
    false,
  ),
)
  .option('--every <k>', 'fine-tune after every K images (default 4)')
  .option('--first-after <n>', 'also fine-tune after the first N images (e.g. 2: as soon as two masks exist)')
  .option('--work <dir>', 'keep the simulation model here (default: a temporary folder)')
  .option(
    '--force',
    'make every fine-tuned version current, whatever its validation metrics (the loop without the acceptance check)',
  )
  .action(async (o: Opts) =>
    withContext(o, async (ctx) => {
      const { pairs, orphans } = await pairImagesWithMasks(o.images as string, o.masks as string);
      ctx.warn(orphanNote(orphans, o.images as string));
      if (pairs.length === 0) throw new InputError(o.masks as string, `no masks match the images in ${o.images}`);
      const every = intArg('--every', o.every as string | undefined, 1) ?? 4;
      // The person sets up their classes before labelling: take them from the list, or from the masks.
      const classes =
        (await ctx.classes()) ?? classListFromMasks(await Promise.all(pairs.map((p) => readMask(p.mask))));
      ctx.say(`${'image'.padEnd(28)}${'model'.padStart(6)}${'changed'.padStart(10)}${'bIoU'.padStart(8)}`);
      const r = await simulateLoop(ctx.client, pairs, {
        every,
        firstAfter: intArg('--first-after', o.firstAfter as string | undefined, 1),
        settings: settingsFrom(o),
        classes,
        encoder: ctx.encoder,
        network: networkFrom(o),
        workDir: o.work ? path.resolve(o.work as string) : undefined,
        onStep: (s) => {
          ctx.progress.stop();
          ctx.say(
            `${s.image.padEnd(28)}${String(s.modelVersion).padStart(6)}${(100 * s.changedFraction).toFixed(2).padStart(9)}%${fmt(s.boundaryIoU).padStart(8)}`,
          );
        },
        onProgress: ctx.progress.handle,
      });
      ctx.out(r);
      for (const f of r.fineTunes)
        ctx.say(
          `fine-tune after ${f.afterImages} images: version ${f.version}${f.accepted ? '' : ' (not accepted)'}, ${f.seconds.toFixed(1)} s`,
        );
      const m = r.summary;
      const pc = (v: number): string => `${(100 * v).toFixed(1)}%`;
      ctx.say(
        `from image ${m.fromImage} on (${m.images} images): pixels to repaint ${pc(m.changedFraction)} (median image ${pc(m.medianChangedFraction)}), boundary IoU ${fmt(m.boundaryIoU)}; an empty suggestion: ${pc(m.emptyFraction)}; rejecting a suggestion whenever an empty one costs less: ${pc(m.withRejectFraction)}; fine-tunes ${m.fineTuneSeconds.toFixed(0)} s`,
      );
    }),
  );

common(program.command('bench').description('pre-label latency and fine-tune throughput on this machine'), false)
  .option('--sizes <list>', 'image sizes, comma-separated (default 256,512,1024,4096)')
  .option('--repeats <n>', 'repeats per size (median reported; default 5)')
  .option('--train-steps <n>', 'timed training steps (default 5)')
  .option('--round <images>', 'images in the timed default fine-tune round (default 20; 0 skips it)')
  .option('--round-size <px>', "size of the round's generated images (default 512)")
  .option('--round-epochs <n>', "epochs of the round (default: the default fine-tune's)")
  .option('--round-crop <px>', "training crop size of the round (default: the default fine-tune's)")
  .action(async (o: Opts) =>
    withContext(o, async (ctx) => {
      const roundImages = intArg('--round', o.round as string | undefined, 0) ?? 20;
      const roundSize = intArg('--round-size', o.roundSize as string | undefined, 32) ?? 512;
      const sizes = ((o.sizes as string | undefined) ?? '256,512,1024,4096')
        .split(',')
        .map((s) => intArg('--sizes', s.trim(), 16) as number);
      const repeats = intArg('--repeats', o.repeats as string | undefined, 1) ?? 5;
      const trainSteps = intArg('--train-steps', o.trainSteps as string | undefined, 1) ?? 5;
      // Every backend that loads, each in its own model process; a forced backend alone.
      const forced = (o.backend as string | undefined) ?? process.env.MASKLOOP_BACKEND;
      const order: readonly BackendName[] = forced && forced !== 'auto' ? [forced as BackendName] : BACKEND_ORDER;
      const results: (BenchResult & { backendReport: BackendReport; sizesNote?: string })[] = [];
      const skipped: { backend: string; reason: string }[] = [];
      for (const backend of order) {
        const client = new ModelClient({ backend });
        try {
          const info = await client.request('info', {});
          // Pure JS is about 23x slower than wasm: beside faster backends it is measured on small work only.
          const reduced = backend === 'cpu' && order.length > 1;
          const roundEpochs = intArg('--round-epochs', o.roundEpochs as string | undefined, 1);
          const roundCrop = intArg('--round-crop', o.roundCrop as string | undefined, 16);
          const fineTuneRound =
            !reduced && roundImages > 0
              ? {
                  images: roundImages,
                  size: roundSize,
                  ...(roundEpochs ? { epochs: roundEpochs } : {}),
                  ...(roundCrop ? { cropSize: roundCrop } : {}),
                }
              : undefined;
          if (fineTuneRound && !ctx.json)
            process.stderr.write(
              `${backend}: timing the default fine-tune round on ${roundImages} generated ${roundSize}x${roundSize} images...\n`,
            );
          const r = await client.request('bench', {
            encoder: ctx.encoder,
            sizes: reduced ? sizes.filter((s) => s <= 256) : sizes,
            repeats: reduced ? 1 : repeats,
            trainSteps: reduced ? 1 : trainSteps,
            cropSize: reduced ? 32 : 128,
            batchSize: 2,
            fineTuneRound,
          });
          results.push({
            ...r,
            backendReport: info.backend,
            sizesNote: reduced ? 'pure-JS backend: sizes up to 256, one training step on 32x32 crops' : undefined,
          });
        } catch (err) {
          skipped.push({
            backend,
            reason: (err instanceof Error ? err.message : String(err)).split('\n')[0].replace(/^Error: /, ''),
          });
        } finally {
          client.dispose();
        }
      }
      if (results.length === 0)
        throw new ModelRequestError(
          'input',
          `no backend could run the benchmark: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`,
        );
      const os = await import('node:os');
      const machine = {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
      };
      // The fastest backend's figures at the top level, every backend's in `backends`.
      ctx.out({ ...results[0], machine, backends: results, skipped });
      ctx.say(`machine: ${machine.cpus} cores, ${machine.cpuModel}, ${machine.memoryGiB} GiB, node ${machine.node}`);
      for (const s of skipped) ctx.say(`skipped ${s.backend}: ${s.reason}`);
      for (const r of results) {
        ctx.say(
          `backend ${r.backend} (${r.backendReport.label}), encoder ${r.encoder}, ${r.parameters} parameters (${r.trainableParameters} trained)${r.sizesNote ? ` [${r.sizesNote}]` : ''}`,
        );
        ctx.say(`  pre-labels with ${r.inference.runtime}: ${r.inference.reason}`);
        for (const s of Object.keys(r.prelabelMs))
          ctx.say(`  pre-label ${s}x${s}: ${r.prelabelMs[s]} ms median (${r.prelabelGflops[s]} GFLOP/s)`);
        ctx.say(
          `  training: ${r.train.medianStepMs} ms per step of ${r.train.batchSize}x${r.train.cropSize}^2 crops, ${r.train.cropsPerSecond} crops/s (${r.train.gflops} GFLOP/s)`,
        );
        ctx.say(`  peak RSS of the model process: ${r.peakRssMiB} MiB`);
        const f = r.fineTuneRound;
        if (f) {
          ctx.say(
            `  default fine-tune round: ${f.images} images of ${f.size}x${f.size}, crops ${f.cropSize}x${f.cropSize} (${f.trainImages} train / ${f.validationImages} held out), ${f.epochs} epochs, ${f.steps} steps in ${f.seconds} s; peak RSS ${f.peakRssMiB} MiB`,
          );
          ctx.say(
            `    held-out pixels to correct ${fmt(f.changedFractionBefore)} -> ${fmt(f.changedFractionAfter)}, boundary IoU ${fmt(f.boundaryIoUBefore)} -> ${fmt(f.boundaryIoUAfter)}`,
          );
        }
      }
    }),
  );

common(program.command('versions').description('list model versions')).action(async (o: Opts) =>
  withContext(o, async (ctx) => {
    const r = await ctx.client.request('versions', { modelDir: ctx.modelDir });
    ctx.out(r);
    if (r.versions.length === 0 && r.unreadable.length === 0) ctx.say(`no versions in ${ctx.modelDir}`);
    for (const u of r.unreadable) ctx.warn(u.reason);
    for (const v of r.versions) {
      ctx.say(
        `${v.version === r.current ? '*' : ' '} ${String(v.version).padStart(4, '0')} parent ${v.parent ?? '-'} ${v.createdAt} ${v.accepted ? 'accepted' : 'rejected'}${v.metricsAfter ? ` val bIoU ${fmt(v.metricsAfter.boundaryIoU)}` : ''} - ${v.reason}`,
      );
    }
    if (r.unreadable.length > 0)
      throw new BatchIncomplete(
        `${r.unreadable.length} part(s) of the model store could not be read (above); the versions listed are intact`,
      );
  }),
);

common(
  program
    .command('rollback')
    .description('make an earlier (or any stored) model version current')
    .requiredOption('--to <version>', 'version number'),
).action(async (o: Opts) =>
  withContext(o, async (ctx) => {
    const r = await ctx.client.request('rollback', {
      modelDir: ctx.modelDir,
      version: intArg('--to', o.to as string, 0) as number,
    });
    ctx.out(r);
    ctx.say(`version ${r.current} is now current`);
  }),
);

program
  .command('import')
  .description('import labels from another tool: one index PNG per image (named by its stem) and a labels.txt')
  .addOption(
    new Option('--from <format>', 'source format; masks: grey or palette PNG masks from elsewhere, renumbered by --map')
      .choices([...IMPORT_SOURCES])
      .makeOptionMandatory(),
  )
  .argument(
    '<source>',
    'COCO: the annotations JSON; labelme: a JSON file or a folder of them; VOC: the dataset root (SegmentationClass/); YOLO: the dataset root (data.yaml, images/, labels/); masks: a PNG or a folder of them',
  )
  .requiredOption('--to <dir>', 'output folder for the masks')
  .option('--classes <file>', 'class list to map names to indices (default: the classes in the source, in order)')
  .option(
    '--map <pairs>',
    'masks: VALUE=CLASS pairs, e.g. 0=1,255=0 for a 0/255 mask whose 0 is the object (CLASS may be "ignore"); a value not listed is an error',
  )
  .option('--force', 'overwrite masks that exist')
  .option('--json', 'print JSON on stdout')
  .action(async (source: string, o: Opts) => {
    if (o.map !== undefined && o.from !== 'masks') throw new UsageError('--map goes with --from masks');
    if (o.map !== undefined) {
      try {
        parseValueMap(o.map as string);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    }
    const report = await importLabels({
      from: o.from as ImportSource,
      source,
      outDir: o.to as string,
      classesFile: o.classes as string | undefined,
      map: o.map as string | undefined,
      force: Boolean(o.force),
    });
    printFormatReport(
      report,
      Boolean(o.json),
      `imported ${report.written.filter((f) => f.endsWith('.png')).length} mask(s) into ${o.to as string}`,
    );
  });

program
  .command('export')
  .description("export masks to another tool's format")
  .addOption(new Option('--to <format>', 'target format').choices([...FORMATS]).makeOptionMandatory())
  .requiredOption('--images <dir>', 'image folder')
  .requiredOption('--masks <dir>', 'mask folder (same stem as the image, .png or .mask.png)')
  .requiredOption('--out <dest>', 'COCO: the JSON file to write; other formats: a folder')
  .option('--classes <file>', 'class list (default: the indices seen in the masks)')
  .option('--tolerance <px>', 'polygon simplification tolerance in pixels (default 0: exact)', '0')
  .addOption(
    new Option('--coco-segmentation <kind>', 'COCO: polygons (regions with holes as RLE) or RLE for every region')
      .choices(['polygon', 'rle'])
      .default('polygon'),
  )
  .option('--force', 'overwrite files that exist')
  .option('--json', 'print JSON on stdout')
  .action(async (o: Opts) => {
    const tolerance = Number(o.tolerance);
    if (!Number.isFinite(tolerance) || tolerance < 0)
      throw new UsageError(`--tolerance must be 0 or more, got "${String(o.tolerance)}"`);
    const report = await exportMasks({
      to: o.to as FormatName,
      imagesDir: o.images as string,
      masksDir: o.masks as string,
      dest: o.out as string,
      classesFile: o.classes as string | undefined,
      tolerance,
      cocoSegmentation: o.cocoSegmentation as 'polygon' | 'rle',
      force: Boolean(o.force),
    });
    printFormatReport(
      report,
      Boolean(o.json),
      `exported ${o.to as string} to ${o.out as string}: ${report.written.length} file(s) written`,
    );
  });

function printFormatReport(report: FormatReport, json: boolean, headline: string): void {
  if (json) {
    process.stdout.write(
      JSON.stringify(
        { written: report.written, skipped: report.skipped, notes: report.notes, classes: report.classes },
        null,
        2,
      ) + '\n',
    );
  } else {
    for (const line of reportLines(report, headline)) process.stdout.write(line + '\n');
  }
  const failed = failedItems(report.skipped);
  if (failed.length > 0)
    throw new BatchIncomplete(
      `${failed.length} item(s) skipped (listed above): fix them, or use --force where a file is in the way, and run it again`,
    );
}

program
  .command('scenes')
  .description('write composite scenes (objects with exact masks on real photographs) for benchmarks')
  .option(
    '--photos <dir>',
    'photograph library: backgrounds/, textures/, silhouettes/ (scripts/fetch-photos.sh)',
    path.join('.cache', 'photos'),
  )
  .option('--out <dir>', 'where to write images/, truth/ and classes.txt', 'maskloop-scenes')
  .option('--images <n>', 'number of scenes', '24')
  .option('--size <px>', 'scene size', '256')
  .option('--seed <n>', 'seed', '1')
  .option('--json', 'print JSON on stdout')
  .action(async (o: Opts) =>
    withContext(o, async (ctx) => {
      const library = await readSceneLibrary(path.resolve(o.photos as string));
      const out = path.resolve(o.out as string);
      const r = await writeSceneData(
        out,
        library,
        intArg('--images', o.images as string, 1) as number,
        intArg('--size', o.size as string, 32) as number,
        intArg('--seed', o.seed as string, 0) as number,
      );
      ctx.out({ dir: out, images: r.images.length });
      ctx.say(
        `${r.images.length} scenes in ${out} (images/, truth/, classes.txt); try: maskloop simulate --images ${path.join(out, 'images')} --masks ${path.join(out, 'truth')} --classes ${path.join(out, 'classes.txt')}`,
      );
    }),
  );

program
  .command('demo')
  .description('the main job on generated sample data: pre-label, correct, fine-tune, evaluate')
  .option('--dir <dir>', 'where to write the sample data', 'maskloop-demo')
  .option('--images <n>', 'number of sample images', '16')
  .option('--labelled <n>', 'images the simulated person corrects', '10')
  .option('--size <px>', 'image size', '192')
  .option('--epochs <n>', 'fine-tune epochs (default: the product default)')
  .option('--seed <n>', 'seed of the generated data', '1')
  .addOption(
    new Option('--backend <name>', 'force a backend').choices(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']),
  )
  .addOption(
    new Option('--encoder <kind>', `encoder of the demo's model (default ${DEFAULT_ENCODER})`).choices([
      ...ENCODER_KINDS,
    ]),
  )
  .option('--json', 'print JSON on stdout')
  .action(async (o: Opts) =>
    withContext(o, (ctx) =>
      runDemo(ctx, {
        dir: o.dir as string,
        images: intArg('--images', o.images as string, 2) as number,
        labelled: intArg('--labelled', o.labelled as string, 1) as number,
        size: intArg('--size', o.size as string, 32) as number,
        epochs: intArg('--epochs', o.epochs as string | undefined, 1),
        seed: intArg('--seed', o.seed as string, 0) as number,
      }),
    ),
  );

async function main(): Promise<number> {
  try {
    await program.parseAsync(process.argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof BatchIncomplete) {
      process.stderr.write(`maskloop: ${err.message}\n`);
      return 1;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`maskloop: ${err.message}\n`);
      return 2;
    }
    if (err instanceof InputError || (err instanceof ModelRequestError && err.kind !== 'internal')) {
      process.stderr.write(`maskloop: ${err.message}\n`);
      return 1;
    }
    const fsMessage = describeFsError(err);
    if (fsMessage) {
      process.stderr.write(`maskloop: ${fsMessage}\n`);
      return 1;
    }
    // A bug, not the person's input: one line, the stack trace only when asked for.
    const message = err instanceof Error ? err.message : String(err);
    if (process.env.MASKLOOP_DEBUG)
      process.stderr.write(`maskloop: internal error: ${message}\n${err instanceof Error ? (err.stack ?? '') : ''}\n`);
    else
      process.stderr.write(
        `maskloop: internal error: ${message.split('\n')[0].replace(/^\w*Error: /, '')} (a bug: run again with MASKLOOP_DEBUG=1 for the stack trace, and report it)\n`,
      );
    return 1;
  }
}

void main().then((code) => {
  process.exitCode = code;
});
