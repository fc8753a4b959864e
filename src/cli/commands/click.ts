// `maskloop click`: segment an object from clicks and a box with a SAM-family model (click segmentation),
// headless, as the editor's click tool does.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { clickModelFiles } from '../../io/clickModelFiles';
import { readMask, writeMask } from '../../io/maskIO';
import { InputError } from '../../masks/inputError';
import type { ClickPromptParams, RequestMap } from '../../protocol/modelProtocol';
import { pairImagesWithMasks } from '../../io/datasetPairs';
import { readClassList } from '../../io/classListFile';
import { IGNORE_INDEX } from '../../masks/maskImage';
import { median } from '../../masks/statistics';
import {
  clickObjects,
  clicksToReach,
  nextClick,
  objectIoU,
  polygonVertices,
  suggestedRegion,
  summariseClicks,
  type ClickRecord,
} from '../../engine/click/clickProtocol';
import { fmt, intArg, requiredArg, textArg, UsageError, type CliContext } from '../cliContext';
import { common, withContext, type Opts } from '../options';

/** "x,y;x,y" as points (pixel positions: each point is its pixel's centre). */
export function parsePoints(option: string, value: string | undefined, positive: boolean): ClickPromptParams['points'] {
  if (value === undefined) return [];
  return value.split(';').map((pair) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$/.exec(pair);
    if (!m) throw new UsageError(`${option} ${value}: give pixel positions as X,Y separated by ";"`);
    return { x: Number(m[1]) + 0.5, y: Number(m[2]) + 0.5, positive };
  });
}

export function parseBox(value: string | undefined): ClickPromptParams['box'] {
  if (value === undefined) return undefined;
  const v = value.split(',').map((s) => Number(s.trim()));
  if (v.length !== 4 || !v.every((n) => Number.isFinite(n) && n >= 0))
    throw new UsageError(`--box ${value}: give X0,Y0,X1,Y1 in pixels`);
  // Corners of the pixels at both ends, inclusive.
  return {
    x0: Math.min(v[0], v[2]),
    y0: Math.min(v[1], v[3]),
    x1: Math.max(v[0], v[2]) + 1,
    y1: Math.max(v[1], v[3]) + 1,
  };
}

const CLICK_MODEL_HELP =
  'a SAM-family pair: NAME.encoder.onnx or NAME.decoder.onnx (the other beside it), their prefix, or a folder holding one pair';

function clickModelArg(o: Opts): ReturnType<typeof clickModelFiles> {
  const named = textArg('--click-model', o.clickModel) ?? textArg('--sam', o.sam);
  if (!named) throw new UsageError('give the click-segmentation model: --click-model PATH (or --sam PATH)');
  return clickModelFiles(named);
}

interface ObjectResult extends ClickRecord {
  image: string;
  classIndex: number;
  area: number;
}

/** The standard click protocol on every object of every image; progress on stderr, one line per image. */
async function simulateClicks(
  ctx: CliContext,
  o: Opts,
): Promise<{
  objects: ObjectResult[];
  /** Clicks per object at most: NoC counts this for an object that never reaches the IoU. */
  cap: number;
  encoderSeconds: number[];
  clickSeconds: number[];
  cropSeconds: number[];
  zoomed: number;
  redrawn: number;
  fromSuggestion: number;
}> {
  const model = clickModelArg(o);
  const imagesDir = requiredArg('--images', o.images);
  const { pairs } = await pairImagesWithMasks(imagesDir, requiredArg('--masks', o.masks));
  if (pairs.length === 0) throw new InputError(imagesDir, 'no image has a mask of the same stem');
  const limit = intArg('--limit', o.limit, 1) ?? pairs.length;
  const cap = intArg('--max-clicks', o.maxClicks, 1) ?? 20;
  const minArea = intArg('--min-area', o.minArea, 1) ?? 400;
  const cacheDir = textArg('--cache', o.cache);
  const help = textArg('--model', o.model) !== undefined;
  // The model's learnt edges redraw the answers of the classes they were kept for (the editor's default).
  const edges = help && o.edges !== false;
  let redrawn = 0;
  /** First clicks the suggested region answered. */
  let fromSuggestion = 0;
  const objects: ObjectResult[] = [];
  const encoderSeconds: number[] = [];
  const clickSeconds: number[] = [];
  /** Clicks that waited for a zoom crop's embedding (the rest are in clickSeconds). */
  const cropSeconds: number[] = [];
  let zoomed = 0;
  const zoom = o.zoom === false ? { zoom: false } : {};
  const honour = o.honour === false ? { honour: false } : {};
  for (const [n, pair] of pairs.slice(0, limit).entries()) {
    const image = path.resolve(pair.image);
    const target = { model, image, ...(cacheDir ? { cacheDir: path.resolve(cacheDir) } : {}) };
    const prepared = await ctx.client.request('clickPrepare', target);
    if (prepared.embedding === 'computed') encoderSeconds.push(prepared.seconds);
    const mask = await readMask(pair.mask);
    if (mask.width !== prepared.width || mask.height !== prepared.height)
      throw new InputError(
        pair.mask,
        `is ${mask.width}x${mask.height}; its image is ${prepared.width}x${prepared.height}`,
      );
    const ignore = mask.data.map((v) => (v === IGNORE_INDEX ? 1 : 0));
    // With a maskloop model: its suggestion for the image, whose region under the first click answers that click
    // where the decoder agrees on its size (as Alt+click accepts it in the editor), refined by the next ones.
    const suggestion = help ? await ctx.client.request('predict', { modelDir: ctx.modelDir, image }) : null;
    const classMap = suggestion
      ? { width: suggestion.width, height: suggestion.height, data: suggestion.classMap }
      : null;
    const found = clickObjects(mask, minArea);
    for (const obj of found) {
      const points: { x: number; y: number; positive: boolean }[] = [];
      const ious: number[] = [];
      let pred: Uint8Array | null = null;
      let answer: number | null = null;
      let refining = false;
      while (ious.length < cap) {
        const click = nextClick(obj.inside, pred, ignore, mask.width, mask.height);
        if (!click) {
          ious.push(1);
          break;
        }
        points.push(click);
        // The suggestion's region under the first click answers it where the decoder's answer is of its size
        // (ClickPromptParams.suggested); the decoder refines it from the next click on.
        const region = classMap && points.length === 1 ? suggestedRegion(classMap, obj.classIndex, click) : null;
        const suggested = region ? { suggested: region } : {};
        // Without continuing, a suggested region that answered the first click is still refined with the next.
        const continueFrom =
          answer === null
            ? {}
            : o.continue !== false
              ? { continueFrom: { answer, candidate: 0 } }
              : refining && pred
                ? { region: pred }
                : {};
        const r: RequestMap['clickSegment']['result'] = await ctx.client.request('clickSegment', {
          ...target,
          prompt: { points, ...continueFrom, ...suggested, ...zoom, ...honour },
          ...(edges ? { edges: { modelDir: ctx.modelDir, classIndex: obj.classIndex } } : {}),
        });
        if (r.learntEdges) redrawn++;
        if (r.fromSuggestion) fromSuggestion++;
        refining = r.fromSuggestion;
        answer = r.answer;
        (r.zoom && r.zoom.embedding !== 'memory' ? cropSeconds : clickSeconds).push(r.seconds);
        if (r.zoom) zoomed++;
        pred = r.candidates[0]?.mask ?? new Uint8Array(mask.data.length);
        ious.push(objectIoU(obj.inside, pred, ignore));
        if (ious[ious.length - 1] >= 0.9) break;
      }
      objects.push({
        image: path.basename(pair.image),
        classIndex: obj.classIndex,
        area: obj.area,
        ious,
        noc85: clicksToReach(ious, 0.85, cap),
        noc90: clicksToReach(ious, 0.9, cap),
        polygon85: polygonVertices(obj.inside, mask.width, mask.height, 0.85),
        polygon90: polygonVertices(obj.inside, mask.width, mask.height, 0.9),
      });
    }
    process.stderr.write(
      `[${n + 1}/${Math.min(limit, pairs.length)}] ${path.basename(pair.image)}: ${found.length} object(s), embedding ${prepared.embedding} in ${prepared.seconds.toFixed(2)} s\n`,
    );
  }
  return { objects, cap, encoderSeconds, clickSeconds, cropSeconds, zoomed, redrawn, fromSuggestion };
}

export function registerClickCommand(program: Command): void {
  common(
    program
      .command('clicks')
      .description(
        'measure click segmentation: the standard click protocol on every object of labelled images (NoC@85, NoC@90, against polygon vertices)',
      )
      .requiredOption('--images <dir>', 'image folder')
      .requiredOption('--masks <dir>', 'masks (same stem as the image)')
      .option('--sam <path>', CLICK_MODEL_HELP)
      .option('--click-model <path>', 'the same as --sam'),
    false,
  )
    .option('--classes <file>', 'class names for the per-class report (labels.txt)')
    .option('--min-area <px>', 'smallest object, in pixels (default 400)')
    .option('--max-clicks <n>', 'clicks per object at most; NoC counts this when never reached (default 20)')
    .option('--limit <n>', 'first N images only')
    .option('--cache <dir>', 'folder of cached image embeddings')
    .option(
      '--model <dir>',
      "a maskloop model whose suggestion helps: the suggested region of the object's class under the first click answers it where the decoder's answer to that click covers at least half its size, and is then the decoder's mask prompt with the next click; its learnt edges (from a fine-tune given this click model) redraw the answers of the classes they were kept for",
    )
    .option('--no-zoom', 'answer every click on the whole image (default: on a crop around the object after the first)')
    .option(
      '--no-honour',
      "keep the decoder's answer where it ignores a click (default: the close colours around such a click are added or removed)",
    )
    .option('--no-edges', "with --model: leave out the model's learnt edges for click answers (ModelMeta.clickEdges)")
    .option(
      '--no-continue',
      "do not give the decoder its previous answer's logits with each next click (SAM's interactive loop does)",
    )
    .action(async (o: Opts) =>
      withContext(o, async (ctx) => {
        const t0 = Date.now();
        const { objects, cap, encoderSeconds, clickSeconds, cropSeconds, zoomed, redrawn, fromSuggestion } =
          await simulateClicks(ctx, o);
        const classesFile = textArg('--classes', o.classes);
        const names = classesFile ? (await readClassList(classesFile)).classes : [];
        const nameOf = (c: number): string => names.find((k) => k.index === c)?.name ?? String(c);
        const perClass = [...new Set(objects.map((r) => r.classIndex))]
          .sort((a, b) => a - b)
          .map((c) => ({
            classIndex: c,
            name: nameOf(c),
            ...summariseClicks(
              objects.filter((r) => r.classIndex === c),
              cap,
            ),
          }));
        const all = summariseClicks(objects, cap);
        const result = {
          ...all,
          perClass,
          encoderMs: median(encoderSeconds) * 1000,
          clickMs: median(clickSeconds) * 1000,
          clicks: clickSeconds.length + cropSeconds.length,
          /** Clicks answered on a zoom crop. */
          zoomedClicks: zoomed,
          /** Answers whose edges the model's learnt edges redrew. */
          learntEdgeClicks: redrawn,
          /** First clicks answered by the model's suggested region (--model). */
          suggestedFirstClicks: fromSuggestion,
          /** Clicks that waited for a zoom crop's embedding, and their median time. */
          cropClicks: cropSeconds.length,
          cropClickMs: cropSeconds.length ? median(cropSeconds) * 1000 : null,
          seconds: (Date.now() - t0) / 1000,
          perObject: objects,
        };
        ctx.out(result);
        ctx.say(
          `${all.objects} objects: NoC@85 ${fmt(all.noc85, 2)}, NoC@90 ${fmt(all.noc90, 2)} (polygon vertices at 0.85: ${fmt(all.polygon85, 1)}, at 0.90: ${fmt(all.polygon90, 1)})`,
        );
        const pc = (v: number): string => `${(100 * v).toFixed(0)}%`;
        ctx.say(
          `  never reached 0.85 / 0.90: ${pc(all.failed85)} / ${pc(all.failed90)} of the objects, so NoC@85 / NoC@90 stay at least ${fmt(all.floor85, 2)} / ${fmt(all.floor90, 2)} however few clicks the others take (they took ${all.reached85 === null ? '-' : fmt(all.reached85, 2)} / ${all.reached90 === null ? '-' : fmt(all.reached90, 2)})`,
        );
        for (const c of perClass)
          ctx.say(
            `  ${c.name}: ${c.objects} objects, NoC@85 ${fmt(c.noc85, 2)}, NoC@90 ${fmt(c.noc90, 2)}, polygon ${fmt(c.polygon85, 1)} / ${fmt(c.polygon90, 1)}, never reached ${pc(c.failed85)} / ${pc(c.failed90)}`,
          );
        ctx.say(
          `encoder ${result.encoderMs.toFixed(0)} ms per image, ${result.clickMs.toFixed(0)} ms per click (medians, model process), ${result.clicks} clicks in ${result.seconds.toFixed(0)} s` +
            `; ${zoomed} answered on a zoom crop` +
            (redrawn ? `, ${redrawn} with learnt edges` : '') +
            (fromSuggestion ? `, ${fromSuggestion} first clicks answered by the suggested region` : '') +
            (result.cropClickMs === null
              ? ''
              : `, ${result.cropClicks} of them waited for its embedding, ${result.cropClickMs.toFixed(0)} ms each (median)`),
        );
      }),
    );

  common(
    program
      .command('click')
      .description('segment an object from clicks and a box with a SAM-family model (encoder/decoder ONNX pair)')
      .argument('<image>', 'the image')
      .option('--click-model <path>', CLICK_MODEL_HELP)
      .option('--sam <path>', 'the same as --click-model')
      .requiredOption('--out <file>', 'mask PNG to write: the object as --class over background (or over --base)'),
    false,
  )
    .option('--points <x,y;...>', 'positive clicks, pixel positions')
    .option('--negative <x,y;...>', 'negative clicks: pixels that are not the object')
    .option('--box <x0,y0,x1,y1>', 'a box around the object, in pixels (inclusive)')
    .option('--refine <mask>', "a mask whose --class region is given to the model to refine (SAM's mask prompt)")
    .option('--base <mask>', 'paint the object over this mask instead of over background')
    .option('--class <n>', 'class index of the object (default 1)')
    .option('--candidate <k>', 'which candidate to write, 0 = the best predicted IoU (default 0)')
    .option('--cache <dir>', 'folder of cached image embeddings (default: none, the embedding is computed)')
    .option('--no-honour', "write the decoder's answer as it is where it ignores a click")
    .option('--force', 'overwrite --out if it exists')
    .action(async (image: string, o: Opts) =>
      withContext(o, async (ctx) => {
        const model = clickModelArg(o);
        const out = path.resolve(requiredArg('--out', o.out));
        if (fs.existsSync(out) && !o.force) throw new InputError(out, 'exists; add --force to overwrite it');
        const cls = intArg('--class', o.class, 1) ?? 1;
        if (cls > 254) throw new UsageError('--class: a class index is 1-254');
        const points = [
          ...parsePoints('--points', textArg('--points', o.points), true),
          ...parsePoints('--negative', textArg('--negative', o.negative), false),
        ];
        const box = parseBox(textArg('--box', o.box));
        if (points.length === 0 && !box) throw new UsageError('give --points, --negative or --box');
        const refine = textArg('--refine', o.refine);
        let region: Uint8Array | undefined;
        if (refine) {
          const m = await readMask(refine);
          region = m.data.map((v) => (v === cls ? 1 : 0));
        }
        const cacheDir = textArg('--cache', o.cache);
        const r = await ctx.client.request('clickSegment', {
          model,
          image: path.resolve(image),
          ...(cacheDir ? { cacheDir: path.resolve(cacheDir) } : {}),
          prompt: {
            points,
            ...(box ? { box } : {}),
            ...(region ? { region } : {}),
            ...(o.honour === false ? { honour: false } : {}),
          },
        });
        const k = intArg('--candidate', o.candidate, 0) ?? 0;
        if (k >= r.candidates.length)
          throw new UsageError(
            `--candidate ${k}: the model gave ${r.candidates.length} candidate(s), 0-${r.candidates.length - 1}`,
          );
        const base = textArg('--base', o.base);
        const mask = base
          ? await readMask(base)
          : { width: r.width, height: r.height, data: new Uint8Array(r.width * r.height) };
        if (mask.width !== r.width || mask.height !== r.height)
          throw new InputError(base ?? out, `is ${mask.width}x${mask.height}; the image is ${r.width}x${r.height}`);
        if (region && region.length !== r.width * r.height)
          throw new InputError(refine ?? '', `is not the image's size (${r.width}x${r.height})`);
        const chosen = r.candidates[k].mask;
        for (let i = 0; i < chosen.length; i++) if (chosen[i]) mask.data[i] = cls;
        await writeMask(out, mask);
        ctx.out({
          image,
          out,
          candidate: k,
          candidates: r.candidates.map((c) => ({ score: c.score, area: c.area })),
          embedding: r.embedding,
          seconds: r.seconds,
        });
        ctx.say(
          `${out}: candidate ${k} of ${r.candidates.length} (predicted IoU ${r.candidates[k].score.toFixed(3)}, ${r.candidates[k].area} pixels) as class ${cls}; embedding ${r.embedding}, ${r.seconds.toFixed(2)} s`,
        );
      }),
    );
}
