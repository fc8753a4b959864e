// `maskloop scenes` and `maskloop demo`: generated data.
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { DEFAULT_ENCODER, ENCODER_KINDS } from '../../protocol/encoderKind';
import { intArg, requiredArg, requiredInt } from '../cliContext';
import { runDemo } from '../demo';
import { readSceneLibrary, writeSceneData } from '../sceneData';
import { backendOption, withContext, type Opts } from '../options';

export function registerDataCommands(program: Command): void {
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
        const library = await readSceneLibrary(path.resolve(requiredArg('--photos', o.photos)));
        const out = path.resolve(requiredArg('--out', o.out));
        const r = await writeSceneData(
          out,
          library,
          requiredInt('--images', o.images, 1),
          requiredInt('--size', o.size, 32),
          requiredInt('--seed', o.seed, 0),
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
    .addOption(backendOption())
    .addOption(
      new Option('--encoder <kind>', `encoder of the demo's model (default ${DEFAULT_ENCODER})`).choices([
        ...ENCODER_KINDS,
      ]),
    )
    .option('--json', 'print JSON on stdout')
    .action(async (o: Opts) =>
      withContext(o, (ctx) =>
        runDemo(ctx, {
          dir: requiredArg('--dir', o.dir),
          images: requiredInt('--images', o.images, 2),
          labelled: requiredInt('--labelled', o.labelled, 1),
          size: requiredInt('--size', o.size, 32),
          epochs: intArg('--epochs', o.epochs, 1),
          seed: requiredInt('--seed', o.seed, 0),
        }),
      ),
    );
}
