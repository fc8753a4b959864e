// `maskloop click`: segment an object from clicks and a box with a SAM-family model (click segmentation),
// headless, as the editor's click tool does.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { clickModelFiles } from '../../io/clickModelFiles';
import { readMask, writeMask } from '../../io/maskIO';
import { InputError } from '../../masks/inputError';
import type { ClickPromptParams } from '../../protocol/modelProtocol';
import { intArg, requiredArg, textArg, UsageError } from '../cliContext';
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

export function registerClickCommand(program: Command): void {
  common(
    program
      .command('click')
      .description('segment an object from clicks and a box with a SAM-family model (encoder/decoder ONNX pair)')
      .argument('<image>', 'the image')
      .requiredOption(
        '--click-model <path>',
        'NAME.encoder.onnx or NAME.decoder.onnx (the other beside it), their prefix, or a folder with one such pair',
      )
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
    .option('--force', 'overwrite --out if it exists')
    .action(async (image: string, o: Opts) =>
      withContext(o, async (ctx) => {
        const model = clickModelFiles(requiredArg('--click-model', o.clickModel));
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
          prompt: { points, ...(box ? { box } : {}), ...(region ? { region } : {}) },
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
