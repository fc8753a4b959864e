import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeRgbPng } from '../io/imageIO';
import { writeMask } from '../io/maskIO';
import { writeFileAtomic } from '../io/atomicWrite';
import { syntheticSample } from '../synthetic/syntheticShapes';
import type { MaskImage, RgbImage } from '../masks/maskImage';
import type { MetricSummary } from '../masks/segmentationMetrics';
import { CliContext, fmt } from './cliContext';

export interface DemoOptions {
  dir: string;
  images: number;
  labelled: number;
  size: number;
  epochs?: number;
  seed: number;
}

/** Writes a generated dataset folder: images/, truth/ (exact masks) and classes.txt (labelme style). */
export async function writeDataset(
  dir: string,
  prefix: string,
  classNames: readonly string[],
  count: number,
  make: (i: number) => { image: RgbImage; mask: MaskImage },
): Promise<{ images: string[]; truths: string[] }> {
  const imagesDir = path.join(dir, 'images');
  const truthDir = path.join(dir, 'truth');
  await fs.promises.mkdir(imagesDir, { recursive: true });
  await fs.promises.mkdir(truthDir, { recursive: true });
  await writeFileAtomic(path.join(dir, 'classes.txt'), ['__ignore__', '_background_', ...classNames].join('\n') + '\n');
  const images: string[] = [];
  const truths: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${prefix}_${String(i + 1).padStart(3, '0')}`;
    const { image, mask } = make(i);
    const img = path.join(imagesDir, `${name}.png`);
    const truth = path.join(truthDir, `${name}.png`);
    await writeFileAtomic(img, await encodeRgbPng(image));
    await writeMask(truth, mask);
    images.push(img);
    truths.push(truth);
  }
  return { images, truths };
}

/** Writes the generated sample folder of the demo: shapes on textured noise. */
export async function writeSampleData(
  dir: string,
  count: number,
  size: number,
  seed: number,
): Promise<{ images: string[]; truths: string[] }> {
  return writeDataset(dir, 'sample', ['ellipse', 'rectangle'], count, (i) =>
    syntheticSample({ width: size, height: size, numClasses: 3, seed: seed * 1000 + i }),
  );
}

/**
 * The main job on generated data: pre-label with the cold-start model, let the "person" correct the
 * first images (their exact masks are saved as corrected masks), fine-tune, and compare suggestions on
 * the held-out images before and after.
 */
export async function runDemo(ctx: CliContext, o: DemoOptions): Promise<void> {
  const dir = path.resolve(o.dir);
  ctx.say(
    `Writing ${o.images} sample images (${o.size}x${o.size}, ellipses and rectangles on textured backgrounds) to ${dir}`,
  );
  const { images, truths } = await writeSampleData(dir, o.images, o.size, o.seed);
  const classesFile = path.join(dir, 'classes.txt');
  const modelDir = path.join(dir, '.maskloop', 'model');
  await fs.promises.rm(path.join(dir, '.maskloop'), { recursive: true, force: true });
  const masksDir = path.join(dir, 'masks');
  await fs.promises.rm(masksDir, { recursive: true, force: true });
  await fs.promises.mkdir(masksDir, { recursive: true });
  const { readClassList } = await import('../io/classListFile');
  const classes = await readClassList(classesFile);
  const info = await ctx.client.request('info', {});
  ctx.say(`Backend: ${info.backend.label}`);
  const labelled = Math.min(o.labelled, o.images - 1);
  const heldOut = images.slice(labelled).map((image, i) => ({ image, mask: truths[labelled + i] }));
  const before = await ctx.client.request(
    'evaluate',
    { modelDir, pairs: heldOut, createIfMissing: true, classes, encoder: ctx.encoder },
    { onProgress: ctx.progress.handle },
  );
  ctx.progress.stop();
  ctx.say(
    `Cold-start model (version ${before.modelVersion}, untrained): suggestions become useful after the first fine-tune.`,
  );
  // Pre-label every image (suggestions/), then the person corrects the first ones: the correction of a
  // suggestion is its exact mask, saved in masks/ as a reviewed mask.
  const suggestionsDir = path.join(dir, 'suggestions');
  await fs.promises.mkdir(suggestionsDir, { recursive: true });
  const pairs = [];
  for (let i = 0; i < images.length; i++) {
    const pred = await ctx.client.request('predict', { modelDir, image: images[i] });
    await writeMask(path.join(suggestionsDir, path.basename(truths[i])), {
      width: pred.width,
      height: pred.height,
      data: pred.classMap,
    });
    if (i < labelled) {
      const mask = path.join(masksDir, path.basename(truths[i]));
      await fs.promises.copyFile(truths[i], mask);
      pairs.push({ image: images[i], mask });
    }
  }
  ctx.say(`Corrected ${labelled} masks; fine-tuning the model on them...`);
  const ft = await ctx.client.request(
    'fineTune',
    {
      modelDir,
      datasetManifest: path.join(dir, '.maskloop', 'dataset.json'),
      workspaceRoot: dir,
      pairs,
      settings: { ...(o.epochs ? { epochs: o.epochs } : {}), seed: o.seed },
    },
    { onProgress: ctx.progress.handle },
  );
  ctx.progress.stop();
  const after = await ctx.client.request('evaluate', { modelDir, pairs: heldOut });
  const rows: [string, keyof MetricSummary][] = [
    ['mIoU', 'miou'],
    ['Dice', 'dice'],
    ['Boundary IoU', 'boundaryIoU'],
    ['Boundary F (2 px)', 'boundaryF'],
    ['pixels to correct', 'changedFraction'],
  ];
  const table = { heldOutImages: heldOut.length, before: before.mean, after: after.mean, fineTune: ft };
  if (ctx.json) {
    ctx.out(table);
    return;
  }
  ctx.say(
    `Fine-tune: version ${ft.version} ${ft.accepted ? 'is now current' : 'was not made current'} (${ft.reason}); ${ft.trainImages} train / ${ft.validationImages} validation images, ${ft.epochs} epochs, ${ft.steps} steps, ${ft.seconds.toFixed(1)} s (TF.js on ${info.backend.backend}; training steps: ${ft.threads}).`,
  );
  ctx.say(`Augmentation: ${ft.augmentation}.`);
  ctx.say('');
  ctx.say(`Suggestions on ${heldOut.length} held-out images (mean):`);
  ctx.say(`  ${'metric'.padEnd(20)}${'before'.padStart(10)}${'after'.padStart(10)}`);
  for (const [label, key] of rows)
    ctx.say(`  ${label.padEnd(20)}${fmt(before.mean[key]).padStart(10)}${fmt(after.mean[key]).padStart(10)}`);
  ctx.say('');
  ctx.say(
    `Sample data, masks and model are in ${dir}; try: maskloop eval --images ${path.join(dir, 'images')} --masks ${path.join(dir, 'truth')} --model ${modelDir}`,
  );
}
