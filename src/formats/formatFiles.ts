// Import and export on disk: reads a source in one of the formats and writes index-PNG masks, or reads
// images and masks and writes a format. Shared by the CLI and the editor's commands. Nothing that exists is
// overwritten unless `force`; every write is atomic; everything left out is reported with why.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomicWrite';
import { classListFromMasks, parseClassList, vocColor, type ClassInfo } from '../masks/classList';
import { pairImagesWithMasks, stemOf } from '../io/datasetPairs';
import { imageSize, isImageFile, jpegBytes } from '../io/imageIO';
import { InputError } from '../masks/inputError';
import type { MaskImage } from '../masks/maskImage';
import { decodeMaskPng, readMask, writeMask } from '../io/maskIO';
import { applyValueMap, checkMaskUsable, parseValueMap } from '../masks/maskValueMap';
import { cocoMaskSource, masksToCoco } from './coco';
import {
  classListFromNames,
  classListText,
  type FormatName,
  type ImportedMask,
  type ImportSource,
  type Skipped,
} from './formatTypes';
import { labelmeLabels, labelmeToMask, maskToLabelme } from './labelme';
import { encodeVocPng, objectMap } from './voc';
import { dataYaml, maskToYolo, parseDataYaml, yoloToMask } from './yolo';

export interface FormatReport {
  written: string[];
  skipped: Skipped[];
  /** Notes about what a format could not carry (holes filled, ignore regions dropped, ...). */
  notes: string[];
  classes: ClassInfo[];
}

/** A report as lines for a person: the headline with the count skipped, then each note and each skipped item. */
export function reportLines(report: FormatReport, headline: string): string[] {
  return [
    `${headline}; ${report.skipped.length} skipped`,
    ...report.notes.map((n) => `  note: ${n}`),
    ...report.skipped.map((s) => `  skipped ${s.item}: ${s.why}`),
  ];
}

export interface Progress {
  (done: number, total: number, item: string): void;
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    throw new InputError(file, `cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(file, `malformed JSON (${(err as Error).message})`);
  }
}

/** Runs a pure parser; its errors become input errors that name the file. */
function asInput<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(file, (err as Error).message.replace(`${file}: `, ''));
  }
}

async function readClasses(file: string | undefined): Promise<ClassInfo[] | undefined> {
  if (!file) return undefined;
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch {
    throw new InputError(file, 'cannot read the class list');
  }
  return parseClassList(text, file).classes;
}

async function exists(file: string): Promise<boolean> {
  return fs.promises.access(file).then(
    () => true,
    () => false,
  );
}

/** Writes unless the target exists and `force` is off; returns whether it wrote. */
async function guardedWrite(
  target: string,
  data: Uint8Array | string,
  force: boolean,
  report: FormatReport,
): Promise<boolean> {
  if (!force && (await exists(target))) {
    report.skipped.push({ item: target, why: 'already exists (use --force to overwrite)' });
    return false;
  }
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  await writeFileAtomic(target, data);
  report.written.push(target);
  return true;
}

async function listFiles(dir: string, keep: (name: string) => boolean): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch (err) {
    throw new InputError(dir, `cannot list the folder (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return names
    .filter(keep)
    .sort()
    .map((n) => path.join(dir, n));
}

export interface ImportOptions {
  /** A format, or 'masks': a folder of grey or palette PNG masks (or one), with `map` to renumber their values. */
  from: ImportSource;
  source: string;
  outDir: string;
  classesFile?: string;
  /** 'masks' only: the value map (`0=1,255=0`); values it lacks are errors. */
  map?: string;
  force: boolean;
  onProgress?: Progress;
}

/** Imports labels into `outDir`: one index PNG per image (named by the image's stem) and a labels.txt. */
export async function importLabels(o: ImportOptions): Promise<FormatReport> {
  const given = await readClasses(o.classesFile);
  const report: FormatReport = { written: [], skipped: [], notes: [], classes: given ?? [] };
  const masks: ImportedMask[] = [];
  // COCO streams: each image's mask is painted as it is written, so one mask is in memory at a time.
  let stream: { total: number; skipped: Skipped[]; masks: () => Generator<ImportedMask> } | undefined;
  switch (o.from) {
    case 'coco': {
      const json = await readJson(o.source);
      const cats = (json as { categories?: { id: number; name: string }[] }).categories;
      report.classes =
        given ??
        classListFromNames(Array.isArray(cats) ? [...cats].sort((a, b) => a.id - b.id).map((c) => c.name) : []);
      stream = asInput(o.source, () => cocoMaskSource(json, o.source, report.classes));
      break;
    }
    case 'labelme': {
      const stat = await fs.promises.stat(o.source).catch(() => null);
      if (!stat) throw new InputError(o.source, 'no such file or folder');
      const files = stat.isDirectory()
        ? await listFiles(o.source, (n) => n.toLowerCase().endsWith('.json'))
        : [o.source];
      const parsed: { file: string; json: unknown }[] = [];
      for (const f of files) parsed.push({ file: f, json: await readJson(f) });
      report.classes = given ?? classListFromNames(parsed.flatMap((p) => labelmeLabels(p.json)));
      for (const p of parsed) {
        try {
          const r = labelmeToMask(p.json, p.file, report.classes);
          // The image beside the file, where it is, has the last word on the size: a mask of another size is useless.
          const image = r.imagePath ? path.resolve(path.dirname(p.file), r.imagePath.replace(/\\/g, '/')) : undefined;
          if (image && (await exists(image))) {
            const size = await imageSize(image);
            if (size.width !== r.mask.width || size.height !== r.mask.height) {
              throw new Error(
                `states the image is ${r.mask.width}x${r.mask.height}, but ${image} is ${size.width}x${size.height}: correct "imageWidth" and "imageHeight" (or re-save the file in labelme)`,
              );
            }
          }
          masks.push({
            imageName: r.imagePath
              ? path.basename(r.imagePath.replace(/\\/g, '/'))
              : path.basename(p.file, '.json') + '.png',
            mask: r.mask,
          });
          report.skipped.push(...r.skipped);
        } catch (err) {
          report.skipped.push({ item: p.file, why: (err as Error).message.replace(`${p.file}: `, '') });
        }
      }
      break;
    }
    case 'voc': {
      const dir = path.join(o.source, 'SegmentationClass');
      const files = await listFiles(dir, (n) => n.toLowerCase().endsWith('.png'));
      const namesFile = path.join(o.source, 'class_names.txt');
      if (!given && (await exists(namesFile))) {
        const names = (await fs.promises.readFile(namesFile, 'utf8'))
          .split(/\r?\n/)
          .map((l) => l.trim())
          .filter(Boolean);
        report.classes = names.map((name, index) => ({
          index,
          name: index === 0 ? '_background_' : name,
          color: vocColor(index),
        }));
      }
      for (const f of files) {
        const bytes = await fs.promises.readFile(f);
        masks.push({ imageName: `${stemOf(f)}.jpg`, mask: decodeMaskPng(bytes, f) });
      }
      if (report.classes.length === 0) {
        report.classes = classListFromMasks(masks.map((m) => m.mask)).classes;
        report.notes.push(
          `no class_names.txt in ${o.source}: the classes are named by their values (${report.classes.map((c) => c.name).join(', ')}); pass --classes to name them`,
        );
      }
      break;
    }
    case 'masks': {
      const map = o.map === undefined ? null : parseValueMap(o.map);
      const stat = await fs.promises.stat(o.source).catch(() => null);
      if (!stat) throw new InputError(o.source, 'no such file or folder');
      const files = stat.isDirectory()
        ? await listFiles(o.source, (n) => n.toLowerCase().endsWith('.png'))
        : [o.source];
      for (const f of files) {
        try {
          const read = await readMask(f);
          const mask = map ? applyValueMap(read, map, f) : read;
          checkMaskUsable(mask, f);
          masks.push({ imageName: path.basename(f), mask });
        } catch (err) {
          if (!(err instanceof InputError)) throw err;
          report.skipped.push({ item: f, why: err.message.replace(`${f}: `, '') });
        }
      }
      if (report.classes.length === 0 && masks.length > 0)
        report.classes = classListFromMasks(masks.map((m) => m.mask)).classes;
      break;
    }
    case 'yolo': {
      const yamlFile = path.join(o.source, 'data.yaml');
      const yamlText = await fs.promises.readFile(yamlFile, 'utf8').catch(() => {
        throw new InputError(yamlFile, 'cannot read data.yaml');
      });
      const names = asInput(yamlFile, () => parseDataYaml(yamlText, yamlFile));
      report.classes = given ?? classListFromNames(names);
      const imagesDir = path.join(o.source, 'images');
      const images = new Map((await listFiles(imagesDir, isImageFile)).map((f) => [stemOf(f), f]));
      for (const f of await listFiles(path.join(o.source, 'labels'), (n) => n.endsWith('.txt'))) {
        const image = images.get(stemOf(f));
        if (!image) {
          report.skipped.push({ item: f, why: `no image named ${stemOf(f)}.* in ${imagesDir} (needed for its size)` });
          continue;
        }
        const { width, height } = await imageSize(image);
        const r = yoloToMask(await fs.promises.readFile(f, 'utf8'), f, width, height, names.length);
        // YOLO class k is the k-th name; map it through the class list by name.
        const remap = new Uint8Array(256).map((_, i) => i);
        names.forEach((n, k) => {
          const c = report.classes.find((x) => x.name === n);
          if (c) remap[k + 1] = c.index;
        });
        for (let i = 0; i < r.mask.data.length; i++) r.mask.data[i] = remap[r.mask.data[i]];
        masks.push({ imageName: path.basename(image), mask: r.mask });
        report.skipped.push(...r.skipped);
      }
      break;
    }
  }
  await fs.promises.mkdir(o.outDir, { recursive: true });
  const seen = new Set<string>();
  const total = stream ? stream.total : masks.length;
  let i = 0;
  for (const m of stream ? stream.masks() : masks) {
    o.onProgress?.(i++, total, m.imageName);
    const stem = stemOf(m.imageName);
    if (seen.has(stem)) {
      report.skipped.push({
        item: m.imageName,
        why: `a second image with the stem "${stem}"; its mask would overwrite the first`,
      });
      continue;
    }
    seen.add(stem);
    const target = path.join(o.outDir, `${stem}.png`);
    if (!o.force && (await exists(target))) {
      report.skipped.push({ item: target, why: 'already exists (use --force to overwrite)' });
      continue;
    }
    await writeMask(target, m.mask);
    report.written.push(target);
  }
  // COCO's skipped annotations, those found while painting included.
  if (stream) report.skipped.push(...stream.skipped);
  if (report.classes.length > 0)
    await guardedWrite(path.join(o.outDir, 'labels.txt'), classListText(report.classes), o.force, report);
  return report;
}

export interface ExportOptions {
  to: FormatName;
  imagesDir: string;
  masksDir: string;
  /** COCO: the JSON file; other formats: a folder. */
  dest: string;
  classesFile?: string;
  /** Polygon simplification tolerance in pixels (0 = exact). */
  tolerance: number;
  cocoSegmentation?: 'polygon' | 'rle';
  force: boolean;
  onProgress?: Progress;
}

/** Exports every image that has a mask. */
export async function exportMasks(o: ExportOptions): Promise<FormatReport> {
  const { pairs, unlabelled, orphans } = await pairImagesWithMasks(o.imagesDir, o.masksDir);
  const report: FormatReport = {
    written: [],
    skipped: [
      ...unlabelled.map((u) => ({ item: u, why: 'no mask', expected: true })),
      ...orphans.map((m) => ({ item: m, why: `no image of the same stem in ${o.imagesDir}` })),
    ],
    notes: [],
    classes: [],
  };
  const loaded: { image: string; stem: string; mask: MaskImage }[] = [];
  for (const [i, p] of pairs.entries()) {
    o.onProgress?.(i, pairs.length * 2, path.basename(p.image));
    const mask = await readMask(p.mask);
    const size = await imageSize(p.image);
    if (size.width !== mask.width || size.height !== mask.height) {
      report.skipped.push({
        item: p.mask,
        why: `mask is ${mask.width}x${mask.height} but ${p.image} is ${size.width}x${size.height}`,
      });
      continue;
    }
    loaded.push({ image: p.image, stem: p.stem, mask });
  }
  report.classes = (await readClasses(o.classesFile)) ?? classListFromMasks(loaded.map((l) => l.mask)).classes;
  const known = new Set(report.classes.map((c) => c.index));
  for (const l of [...loaded]) {
    const unknown = [...new Set(l.mask.data)].filter((v) => v !== 0 && v !== 255 && !known.has(v));
    if (unknown.length) {
      report.skipped.push({ item: l.image, why: `its mask uses class ${unknown.join(', ')}, not in the class list` });
      loaded.splice(loaded.indexOf(l), 1);
    }
  }
  const step = (i: number, item: string): void => o.onProgress?.(loaded.length + i, loaded.length * 2, item);
  switch (o.to) {
    case 'coco': {
      const { dataset, ignoredRegions, rleRegions } = masksToCoco(
        loaded.map((l) => ({
          imageName: path
            .relative(path.dirname(path.resolve(o.dest)), l.image)
            .split(path.sep)
            .join('/'),
          mask: l.mask,
        })),
        report.classes,
        { tolerance: o.tolerance, segmentation: o.cocoSegmentation ?? 'polygon' },
      );
      if (!o.force && (await exists(o.dest))) throw new InputError(o.dest, 'already exists (use --force to overwrite)');
      await fs.promises.mkdir(path.dirname(path.resolve(o.dest)), { recursive: true });
      await writeJsonAtomic(o.dest, dataset);
      report.written.push(o.dest);
      if (rleRegions)
        report.notes.push(
          `${rleRegions} region(s) written as compressed RLE${o.cocoSegmentation === 'rle' ? '' : ' because they have holes, which COCO polygons (a union) cannot carry'}`,
        );
      if (ignoredRegions)
        report.notes.push(`${ignoredRegions} ignore (255) region(s) are not COCO annotations and were left out`);
      break;
    }
    case 'labelme':
      for (const [i, l] of loaded.entries()) {
        step(i, l.stem);
        const json = maskToLabelme(
          l.mask,
          path.relative(o.dest, l.image).split(path.sep).join('/'),
          report.classes,
          o.tolerance,
        );
        await guardedWrite(path.join(o.dest, `${l.stem}.json`), JSON.stringify(json, null, 2) + '\n', o.force, report);
      }
      await guardedWrite(path.join(o.dest, 'labels.txt'), classListText(report.classes), o.force, report);
      break;
    case 'voc': {
      for (const [i, l] of loaded.entries()) {
        step(i, l.stem);
        await guardedWrite(
          path.join(o.dest, 'JPEGImages', `${l.stem}.jpg`),
          await jpegBytes(l.image, path.join(o.dest, 'JPEGImages', `${l.stem}.jpg`)),
          o.force,
          report,
        );
        await guardedWrite(
          path.join(o.dest, 'SegmentationClass', `${l.stem}.png`),
          encodeVocPng(l.mask),
          o.force,
          report,
        );
        const { objects, count } = objectMap(l.mask);
        if (count > 254)
          report.notes.push(`${l.stem}: ${count} objects; ids above 254 share 254 in SegmentationObject`);
        await guardedWrite(
          path.join(o.dest, 'SegmentationObject', `${l.stem}.png`),
          encodeVocPng(objects),
          o.force,
          report,
        );
      }
      const sorted = [...report.classes].sort((a, b) => a.index - b.index);
      await guardedWrite(
        path.join(o.dest, 'class_names.txt'),
        sorted.map((c) => (c.index === 0 ? 'background' : c.name)).join('\n') + '\n',
        o.force,
        report,
      );
      await guardedWrite(
        path.join(o.dest, 'ImageSets', 'Segmentation', 'default.txt'),
        loaded.map((l) => l.stem).join('\n') + '\n',
        o.force,
        report,
      );
      break;
    }
    case 'yolo': {
      let holes = 0;
      let ignored = 0;
      for (const [i, l] of loaded.entries()) {
        step(i, l.stem);
        const y = maskToYolo(l.mask, o.tolerance);
        holes += y.filledHoles;
        ignored += y.ignoredRegions;
        await guardedWrite(path.join(o.dest, 'labels', `${l.stem}.txt`), y.text, o.force, report);
        await guardedWrite(
          path.join(o.dest, 'images', path.basename(l.image)),
          await fs.promises.readFile(l.image),
          o.force,
          report,
        );
      }
      await guardedWrite(
        path.join(o.dest, 'data.yaml'),
        asInput(o.classesFile ?? o.masksDir, () => dataYaml(report.classes)),
        o.force,
        report,
      );
      if (holes) report.notes.push(`${holes} hole(s) filled: YOLO polygons cannot express holes`);
      if (ignored) report.notes.push(`${ignored} ignore (255) region(s) have no YOLO class and were left out`);
      break;
    }
  }
  return report;
}
