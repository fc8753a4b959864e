// The commands around the model: info, doctor, predict, finetune, eval, simulate, versions, rollback.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { DEFAULT_FINE_TUNE_RULE, fineTuneRuleFor, UNRELATED_FINE_TUNE_RULE } from '../../engine/training/fineTuneRule';
import { classListFromMasks } from '../../masks/classList';
import { expandImageArgs, orphanNote, pairImagesWithMasks, stemOf, type ImageMaskPair } from '../../io/datasetPairs';
import { describeFsError } from '../../masks/fsErrors';
import { InputError } from '../../masks/inputError';
import { readMask, writeMask } from '../../io/maskIO';
import { ModelRequestError } from '../../modelServer/modelClient';
import { BatchIncomplete, fmt, intArg, requiredArg, requiredInt, textArg, type CliContext } from '../cliContext';
import { clickModelFiles } from '../../io/clickModelFiles';
import { simulateLoop } from '../simulateLoop';
import { doctorText } from '../../protocol/doctorText';
import { common, networkFrom, settingsFrom, trainingOptions, withContext, type Opts } from '../options';

export function registerModelCommands(program: Command): void {
  common(program.command('info').description('backend in use and why, versions, model summary')).action(
    async (o: Opts) =>
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
    program.command('doctor').description('every backend: installed, loads, usable, why not and the fix; timed'),
    false,
  )
    .option('--no-time', 'skip the timed 512x512 pre-label and training step')
    .action(async (o: Opts & { time: boolean }) =>
      withContext(o, async (ctx) => {
        const report = await ctx.client.request('doctor', { time: o.time });
        ctx.out(report);
        for (const line of doctorText(report)) ctx.say(line);
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
        const out = path.resolve(requiredArg('--out', o.out));
        const targets = predictTargets(files, out, Boolean(o.force));
        await fs.promises.mkdir(out, { recursive: true });
        const tileSize = intArg('--tile', o.tile, 32);
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
    .option(
      '--click-model <path>',
      "also learn edges for this click model's answers from the masks (a SAM-family pair: NAME.encoder.onnx or NAME.decoder.onnx, their prefix, or a folder holding one pair)",
    )
    .action(async (o: Opts) =>
      withContext(o, async (ctx) => {
        const settings = settingsFrom(o);
        const clickModelPath = textArg('--click-model', o.clickModel);
        const clickModel = clickModelPath ? clickModelFiles(clickModelPath) : undefined;
        const { pairs, unlabelled, orphans } = await pairImagesWithMasks(
          requiredArg('--images', o.images),
          requiredArg('--masks', o.masks),
        );
        ctx.warn(orphanNote(orphans, requiredArg('--images', o.images)));
        if (pairs.length === 0)
          throw new InputError(
            requiredArg('--masks', o.masks),
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
            ...(clickModel ? { clickModel } : {}),
          },
          { onProgress: ctx.progress.handle },
        );
        ctx.progress.stop();
        ctx.out(r);
        ctx.say(
          `version ${r.version} (parent ${r.parent}) ${r.accepted ? 'is now current' : 'was stored but NOT made current'}: ${r.reason}`,
        );
        ctx.say(r.augmentation);
        ctx.say(`pixel head: ${r.pixelHead}`);
        ctx.say(`click edges: ${r.clickEdges}`);
        if (!r.trainingFit.learnedNothing) ctx.say(`version ${r.version} ${r.trainingFit.reason}`);
        ctx.say(
          `${r.trainImages} train / ${r.validationImages} validation images, ${r.epochs} epochs, ${r.steps} steps, ${r.seconds.toFixed(1)} s`,
        );
        const t = r.timing;
        ctx.say(
          `gradients: ${r.threads}; time: context head ${t.contextHead.toFixed(1)} s, training steps ${t.training.toFixed(1)} s, validation ${t.validation.toFixed(1)} s, pixel head ${t.pixelHead.toFixed(1)} s, check ${t.check.toFixed(1)} s`,
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
      const pairs = await matchedPairs(o, ctx);
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
    .option('--every <k>', `fine-tune after every K images (default ${DEFAULT_FINE_TUNE_RULE.every})`)
    .option(
      '--first-after <n>',
      `also fine-tune after the first N images (default, as the editor reminds a person to: ${DEFAULT_FINE_TUNE_RULE.firstAfter} with --sequence, ${UNRELATED_FINE_TUNE_RULE.firstAfter} without; 0: only every K)`,
    )
    .option(
      '--sequence',
      'the images are frames of a sequence in name order: each suggestion follows the previous accepted mask along the optical flow',
    )
    .option('--work <dir>', 'keep the simulation model here (default: a temporary folder)')
    .option(
      '--force',
      'make every fine-tuned version current, whatever its validation metrics (the loop without the acceptance check)',
    )
    .action(async (o: Opts) =>
      withContext(o, async (ctx) => {
        const pairs = await matchedPairs(o, ctx);
        const every = intArg('--every', o.every, 1) ?? DEFAULT_FINE_TUNE_RULE.every;
        // The person sets up their classes before labelling: take them from the list, or from the masks.
        const classes =
          (await ctx.classes()) ?? classListFromMasks(await Promise.all(pairs.map((p) => readMask(p.mask))));
        ctx.say(`${'image'.padEnd(28)}${'model'.padStart(6)}${'changed'.padStart(10)}${'bIoU'.padStart(8)}`);
        const r = await simulateLoop(ctx.client, pairs, {
          every,
          firstAfter: intArg('--first-after', o.firstAfter, 0) ?? fineTuneRuleFor(o.sequence === true).firstAfter,
          sequence: o.sequence === true,
          settings: settingsFrom(o),
          classes,
          encoder: ctx.encoder,
          network: networkFrom(o),
          workDir: o.work ? path.resolve(requiredArg('--work', o.work)) : undefined,
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
        version: requiredInt('--to', o.to, 0),
      });
      ctx.out(r);
      ctx.say(`version ${r.current} is now current`);
    }),
  );
}

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

/** The images of --images with their masks in --masks: masks without an image are warned of, none at all fails. */
async function matchedPairs(o: Opts, ctx: CliContext): Promise<ImageMaskPair[]> {
  const images = requiredArg('--images', o.images);
  const masks = requiredArg('--masks', o.masks);
  const { pairs, orphans } = await pairImagesWithMasks(images, masks);
  ctx.warn(orphanNote(orphans, images));
  if (pairs.length === 0) throw new InputError(masks, `no masks match the images in ${images}`);
  return pairs;
}
