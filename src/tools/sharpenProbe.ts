// Measures "sharpen suggestions" (sharpenRegions.ts) on labelled images: the suggestions a model wrote
// (`maskloop predict --out DIR`), redrawn region by region by a SAM-family pair, against the hand-drawn masks.
// Prints the mean pixels to change, mIoU and Boundary IoU of the suggestions and of each variant.
//
//   node dist-tools/sharpenProbe.js --images DIR --masks DIR --suggestions DIR --sam DIR [--from N --to M]
//     [--variants JSON]   (a name -> SharpenOptions & { prompt: 'box' | 'box+mask', classes?: number[] } map)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { SamModel } from '../engine/click/samModel';
import { clickModelFiles } from '../io/clickModelFiles';
import { decodeImage, isImageFile } from '../io/imageIO';
import { readMask } from '../io/maskIO';
import { naturalCompare } from '../masks/naturalOrder';
import { compareMasks, meanMetrics, type MaskMetrics, type MetricSummary } from '../masks/segmentationMetrics';
import { applyRedrawn, closestCandidate, proposeRegions, type SharpenOptions } from './sharpenRegions';

type Variant = SharpenOptions & { prompt: 'box' | 'box+mask'; classes?: number[] };

const DEFAULT_VARIANTS: Record<string, Variant> = {
  box: { minArea: 400, maxShare: 0.25, minAgreement: 0.7, bandFraction: 0.02, prompt: 'box' },
  'box+mask': { minArea: 400, maxShare: 0.25, minAgreement: 0.7, bandFraction: 0.02, prompt: 'box+mask' },
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      images: { type: 'string' },
      masks: { type: 'string' },
      suggestions: { type: 'string' },
      sam: { type: 'string' },
      from: { type: 'string', default: '0' },
      to: { type: 'string' },
      variants: { type: 'string' },
      cache: { type: 'string' },
    },
  });
  const { images, masks, suggestions, sam } = values;
  if (!images || !masks || !suggestions || !sam)
    throw new Error('give --images DIR --masks DIR --suggestions DIR --sam PATH');
  const variants = values.variants ? (JSON.parse(values.variants) as Record<string, Variant>) : DEFAULT_VARIANTS;
  const model = await SamModel.load(clickModelFiles(sam));
  const files = fs
    .readdirSync(images)
    .filter(isImageFile)
    .sort(naturalCompare)
    .slice(Number(values.from), values.to === undefined ? undefined : Number(values.to));
  const before: MaskMetrics[] = [];
  const after: Record<string, MaskMetrics[]> = {};
  for (const f of files) {
    const stem = f.replace(/\.[^.]+$/, '');
    const image = await decodeImage(path.join(images, f));
    const truth = await readMask(path.join(masks, `${stem}.png`));
    const suggestion = await readMask(path.join(suggestions, `${stem}.png`));
    before.push(compareMasks(truth, suggestion));
    const { embedding } = await model.embed(image, values.cache);
    const diagonal = Math.hypot(image.width, image.height);
    for (const [name, v] of Object.entries(variants)) {
      const work = { ...suggestion, data: Uint8Array.from(suggestion.data) };
      const regions = proposeRegions(suggestion, v).filter((r) => !v.classes || v.classes.includes(r.classIndex));
      let redrawn = 0;
      for (const r of regions) {
        const found = await model.segment(embedding, {
          points: [],
          box: r.box,
          ...(v.prompt === 'box+mask' ? { region: { width: image.width, height: image.height, data: r.inside } } : {}),
        });
        const best = closestCandidate(r.inside, found);
        if (!best || best.iou < v.minAgreement) continue;
        redrawn++;
        applyRedrawn(work, r, best.mask, Math.max(1, Math.round(v.bandFraction * diagonal)));
      }
      (after[name] ??= []).push(compareMasks(truth, work));
      process.stderr.write(`${f} ${name}: ${regions.length} regions, ${redrawn} redrawn\n`);
    }
  }
  const show = (m: MetricSummary): string =>
    `pixels to change ${(100 * m.changedFraction).toFixed(2)}%, mIoU ${m.miou.toFixed(4)}, Boundary IoU ${m.boundaryIoU.toFixed(4)}`;
  console.log(`${files.length} images`);
  console.log(`suggestion: ${show(meanMetrics(before))}`);
  for (const [name, list] of Object.entries(after)) console.log(`${name}: ${show(meanMetrics(list))}`);
  await model.release();
}

main().catch((err: unknown) => {
  console.error((err as Error).message);
  process.exit(1);
});
