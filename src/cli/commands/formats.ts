// `maskloop import` and `maskloop export`.
import { Command, Option } from 'commander';
import { parseValueMap } from '../../masks/maskValueMap';
import { BatchIncomplete, UsageError, choiceArg, requiredArg, requiredChoice, textArg } from '../cliContext';
import { exportMasks, importLabels, reportLines, type FormatReport } from '../../formats/formatFiles';
import { failedItems, FORMATS, IMPORT_SOURCES } from '../../formats/formatTypes';
import { type Opts } from '../options';

export function registerFormatCommands(program: Command): void {
  program
    .command('import')
    .description('import labels from another tool: one index PNG per image (named by its stem) and a labels.txt')
    .addOption(
      new Option(
        '--from <format>',
        'source format; masks: grey or palette PNG masks from elsewhere, renumbered by --map',
      )
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
          parseValueMap(requiredArg('--map', o.map));
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
      }
      const report = await importLabels({
        from: requiredChoice('--from', o.from, IMPORT_SOURCES),
        source,
        outDir: requiredArg('--to', o.to),
        classesFile: textArg('--classes', o.classes),
        map: textArg('--map', o.map),
        force: Boolean(o.force),
      });
      printFormatReport(
        report,
        Boolean(o.json),
        `imported ${report.written.filter((f) => f.endsWith('.png')).length} mask(s) into ${requiredArg('--to', o.to)}`,
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
        to: requiredChoice('--to', o.to, FORMATS),
        imagesDir: requiredArg('--images', o.images),
        masksDir: requiredArg('--masks', o.masks),
        dest: requiredArg('--out', o.out),
        classesFile: textArg('--classes', o.classes),
        tolerance,
        cocoSegmentation: choiceArg('--coco-segmentation', o.cocoSegmentation, ['polygon', 'rle'] as const),
        force: Boolean(o.force),
      });
      printFormatReport(
        report,
        Boolean(o.json),
        `exported ${requiredArg('--to', o.to)} to ${requiredArg('--out', o.out)}: ${report.written.length} file(s) written`,
      );
    });
}

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
