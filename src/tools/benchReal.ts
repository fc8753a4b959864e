// The real-data benchmark: the labelling loop (`maskloop simulate`) on the real images with hand-drawn masks in
// ../shared/data (CamVid street frames, ISBI 2012 EM sections), beside two baselines a person has without a
// model: an empty suggestion, and copying the previous image's mask. Run: npm run bench:real [-- options]
//
// Each set is split into two halves in name order; `--part` picks the half. Settings are chosen on the first
// half and reported on the second (docs/benchmarks.md), so the reported figures are not fitted to their data.
// The EM masks ship as 0/255 (0 = membrane); they are imported first with the same code as
// `maskloop import --from masks --map 0=1,255=0`. The data stay where they are; nothing is copied into the
// repository.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { simulateLoop, summarizeSimulation, type SimStep } from '../cli/simulateLoop';
import type { EncoderKind } from '../protocol/encoderKind';
import type { FineTuneSettings } from '../engine/training/fineTune';
import type { NetworkOptions } from '../engine/network/resUNet';
import { importLabels } from '../formats/formatFiles';
import { type ClassList } from '../masks/classList';
import { readClassList } from '../io/classListFile';
import { pairImagesWithMasks, type ImageMaskPair } from '../io/datasetPairs';
import { readMask } from '../io/maskIO';
import type { MaskImage, RgbImage } from '../masks/maskImage';
import { decodeImage } from '../io/imageIO';
import { carryBetween } from '../engine/inference/sequenceSuggestion';
import { compareMasks } from '../masks/segmentationMetrics';
import { ModelClient } from '../modelServer/modelClient';
import { fineTuneRuleFor } from '../engine/training/fineTuneRule';

interface RealSet {
  name: string;
  images: string;
  masks: string;
  labels?: string;
  /** A `--map` for masks that ship in another convention. */
  map?: string;
}

function realSets(data: string): RealSet[] {
  const camvid = (name: string): RealSet => ({
    name,
    images: path.join(data, 'camvid', name, 'images'),
    masks: path.join(data, 'camvid', name, 'masks'),
    labels: path.join(data, 'camvid', 'labels.txt'),
  });
  return [
    camvid('street-1hz'),
    camvid('street-15hz'),
    {
      name: 'em-membranes',
      images: path.join(data, 'em-membranes', 'images'),
      masks: path.join(data, 'em-membranes', 'masks'),
      map: '0=1,255=0',
    },
  ];
}

type Baseline = 'empty' | 'copy' | 'carry';
type Mode =
  | Baseline
  | 'default'
  | 'fast'
  | 'scratch'
  | 'plain'
  | 'dropout'
  | 'nodecay'
  | 'nohead'
  | 'fastnohead'
  | 'sequence'
  | 'fastsequence';
const MODES: readonly Mode[] = [
  'empty',
  'copy',
  'carry',
  'default',
  'fast',
  'scratch',
  'plain',
  'dropout',
  'nodecay',
  'nohead',
  'fastnohead',
  'sequence',
  'fastsequence',
];
/**
 * The loops: the defaults, the fast fine-tune, from scratch, the ablations (no shortcuts, dropout, no L2, no pixel
 * head), and the default and fast loops on the frames as a sequence (`simulate --sequence`).
 */
const LOOP: Record<
  Exclude<Mode, Baseline>,
  { settings: Partial<FineTuneSettings>; encoder?: EncoderKind; network?: NetworkOptions; sequence?: boolean }
> = {
  default: { settings: {} },
  fast: { settings: { epochs: 0 } },
  scratch: { settings: {}, encoder: 'scratch' },
  plain: { settings: {}, network: { residual: false } },
  dropout: { settings: {}, network: { decoderDropout: 0.1 } },
  nodecay: { settings: { weightDecay: 0 } },
  nohead: { settings: { pixelHead: false } },
  fastnohead: { settings: { epochs: 0, pixelHead: false } },
  sequence: { settings: {}, sequence: true },
  fastsequence: { settings: { epochs: 0 }, sequence: true },
};

interface Row {
  set: string;
  part: string;
  mode: Mode;
  frames: number;
  /** The loop's first fine-tune after this many images (0: every `every` only); absent for the baselines. */
  firstAfter?: number;
  /** From the 3rd frame on: means of pixels to change, Boundary IoU, mIoU; total fine-tune seconds. */
  changedFraction: number;
  boundaryIoU: number;
  miou: number;
  fineTuneSeconds: number;
  fineTunes: {
    afterImages: number;
    accepted: boolean;
    reason: string;
    seconds: number;
    trainImages: number;
    validationImages: number;
  }[];
  steps: SimStep[];
}

/**
 * Metrics of a baseline suggestion per frame: empty, the previous frame's mask, or that mask carried along the
 * optical flow (`carry`: what a sequence's suggestion is without a model; uncarried pixels background).
 */
async function baseline(pairs: ImageMaskPair[], mode: Baseline, classes: number): Promise<SimStep[]> {
  const steps: SimStep[] = [];
  let previous: { image: RgbImage; mask: MaskImage } | null = null;
  for (const p of pairs) {
    const truth = await readMask(p.mask);
    const image = await decodeImage(p.image);
    const zeros = { width: truth.width, height: truth.height, data: new Uint8Array(truth.data.length) };
    let suggestion: MaskImage = zeros;
    if (previous && mode === 'copy') suggestion = previous.mask;
    if (previous && mode === 'carry') {
      const carried = await carryBetween(previous, image, classes);
      const data = Uint8Array.from(carried.labels, (v) => (v < classes ? v : 0));
      suggestion = { width: truth.width, height: truth.height, data };
    }
    const m = compareMasks(truth, suggestion);
    steps.push({
      image: path.basename(p.image),
      modelVersion: 0,
      changedFraction: m.changedFraction,
      boundaryIoU: m.boundaryIoU,
      miou: m.miou,
      emptyFraction: compareMasks(truth, zeros).changedFraction,
    });
    previous = { image, mask: truth };
  }
  return steps;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: path.resolve('..', 'shared', 'data') },
      sets: { type: 'string', default: 'street-1hz,street-15hz,em-membranes' },
      modes: { type: 'string', default: MODES.join(',') },
      part: { type: 'string', default: 'second' },
      every: { type: 'string', default: '4' },
      'first-after': { type: 'string' },
      out: { type: 'string' },
    },
  });
  const modes = (values.modes as string).split(',') as Mode[];
  for (const m of modes) if (!MODES.includes(m)) throw new Error(`--modes: ${m} is not one of ${MODES.join(', ')}`);
  const part = values.part as string;
  if (!['first', 'second', 'all'].includes(part)) throw new Error('--part: first, second or all');
  const every = Number(values.every);
  // Unset: the editor's rule for the mode (an early first fine-tune for frames followed as a sequence).
  const firstAfterOf = (mode: Exclude<Mode, Baseline>): number =>
    values['first-after'] === undefined
      ? fineTuneRuleFor(LOOP[mode].sequence === true).firstAfter
      : Number(values['first-after']);
  const wanted = (values.sets as string).split(',');
  const sets = realSets(values.data as string).filter((s) => wanted.includes(s.name));
  if (!fs.existsSync(values.data as string))
    throw new Error(`${values.data}: no data folder (the real data live in ../shared/data beside the checkout)`);
  const work = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'maskloop-bench-real-'));
  const rows: Row[] = [];
  const client = new ModelClient();
  const info = await client.request('info', {});
  try {
    for (const set of sets) {
      let masks = set.masks;
      let classes: ClassList | undefined = set.labels ? await readClassList(set.labels) : undefined;
      if (set.map) {
        masks = path.join(work, `${set.name}-masks`);
        const r = await importLabels({ from: 'masks', source: set.masks, outDir: masks, map: set.map, force: false });
        if (r.skipped.length > 0)
          throw new Error(`${set.name}: import skipped ${r.skipped.map((s) => `${s.item} (${s.why})`).join('; ')}`);
        classes = {
          classes: [
            { index: 0, name: '_background_', color: '#000000' },
            { index: 1, name: 'membrane', color: '#ff3030' },
          ],
        };
      }
      const { pairs: all } = await pairImagesWithMasks(set.images, masks);
      const half = Math.floor(all.length / 2);
      const pairs = part === 'first' ? all.slice(0, half) : part === 'second' ? all.slice(half) : all;
      for (const mode of modes) {
        const t0 = Date.now();
        let steps: SimStep[];
        let fineTunes: Row['fineTunes'] = [];
        let firstAfter: number | undefined;
        if (mode === 'empty' || mode === 'copy' || mode === 'carry') {
          const k = classes?.classes.length ?? 256;
          steps = await baseline(pairs, mode, k);
        } else {
          firstAfter = firstAfterOf(mode);
          const r = await simulateLoop(client, pairs, {
            every,
            firstAfter,
            settings: LOOP[mode].settings,
            classes,
            encoder: LOOP[mode].encoder,
            network: LOOP[mode].network,
            sequence: LOOP[mode].sequence,
            workDir: await fs.promises.mkdtemp(path.join(work, `${set.name}-${mode}-`)),
          });
          steps = r.steps;
          fineTunes = r.fineTunes.map((f) => ({
            afterImages: f.afterImages,
            accepted: f.accepted,
            reason: f.reason,
            seconds: f.seconds,
            trainImages: f.trainImages,
            validationImages: f.validationImages,
          }));
        }
        const s = summarizeSimulation(
          steps,
          fineTunes.map((f) => ({ ...f, version: 0 })),
        );
        const row: Row = {
          set: set.name,
          part,
          mode,
          frames: pairs.length,
          ...(firstAfter === undefined ? {} : { firstAfter }),
          changedFraction: s.changedFraction,
          boundaryIoU: s.boundaryIoU,
          miou: steps.slice(2).reduce((a, x) => a + x.miou, 0) / Math.max(1, steps.length - 2),
          fineTuneSeconds: s.fineTuneSeconds,
          fineTunes,
          steps,
        };
        rows.push(row);
        const accepted = fineTunes.length
          ? `, fine-tunes accepted ${fineTunes.filter((f) => f.accepted).length}/${fineTunes.length}`
          : '';
        process.stdout.write(
          `${set.name} (${part} half, ${pairs.length} frames) ${mode.padEnd(8)} pixels to change ${(100 * row.changedFraction).toFixed(1)}%, Boundary IoU ${row.boundaryIoU.toFixed(3)}, mIoU ${row.miou.toFixed(3)}, fine-tunes ${row.fineTuneSeconds.toFixed(0)} s${accepted} [${((Date.now() - t0) / 1000).toFixed(0)} s wall]\n`,
        );
      }
    }
  } finally {
    client.dispose();
    await fs.promises.rm(work, { recursive: true, force: true });
  }
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    backend: info.backend.backend,
    inference: info.inference.runtime,
  };
  const report = { machine, every, part, rows };
  if (values.out) await fs.promises.writeFile(values.out as string, JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, training on ${machine.backend}, pre-labels with ${machine.inference}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:real: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
