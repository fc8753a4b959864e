import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { writeSampleData } from '../../src/cli/demo';
import { writeMask } from '../../src/io/maskIO';
import { jsonCli, runCli, type CliRun } from './cliRun';
import type { FineTuneTiming } from '../../src/protocol/modelTypes';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-cli-'));

function run(args: string[], cwd = root): CliRun {
  return runCli(args, { cwd });
}

function json<T>(args: string[]): T {
  return jsonCli<T>(args, { cwd: root });
}

const fast = ['--epochs', '1', '--steps', '2', '--crop', '32'];

test('end to end: info, finetune, predict, eval, versions, rollback, simulate, bench', async () => {
  const data = path.join(root, 'data');
  await writeSampleData(data, 5, 48, 3);
  const images = path.join(data, 'images');
  const truth = path.join(data, 'truth');
  const classes = path.join(data, 'classes.txt');

  const info = json<{ backend: { backend: string; attempts: { backend: string; reason: string }[] }; model: unknown }>([
    'info',
  ]);
  assert.equal(info.backend.backend, 'wasm');
  assert.equal(info.model, null);
  const text = run(['info', '--backend', 'auto']);
  assert.equal(text.code, 0);
  // Whatever this machine has: every faster backend is named, used or skipped with its reason.
  assert.match(text.stdout, /^ {2}(used {3}|skipped) webgpu: \S.*$/m);
  assert.match(text.stdout, /^ {2}(used {3}|skipped) tensorflow-gpu: \S.*$/m);
  assert.match(text.stdout, /^ {2}(used {3}|skipped) tensorflow: \S.*$/m);

  const ft = json<{
    version: number;
    accepted: boolean;
    trainImages: number;
    validationImages: number;
    pixelHead: string;
    threads: string;
  }>(['finetune', '--images', images, '--masks', truth, '--classes', classes, ...fast]);
  assert.equal(ft.version, 1);
  assert.match(ft.threads, /^onnxruntime, \d+ threads, one graph per step$/, 'the steps ran through onnxruntime');
  assert.equal(ft.trainImages + ft.validationImages, 5);
  assert.ok(ft.validationImages >= 1);
  const model = path.join(root, '.maskloop', 'model');
  assert.ok(fs.existsSync(path.join(model, 'versions', '0001', 'manifest.json')));
  const manifest = JSON.parse(fs.readFileSync(path.join(model, 'versions', '0001', 'manifest.json'), 'utf8'));
  assert.equal(manifest.parent, 0);
  assert.equal(manifest.train.length + manifest.validation.length, 5);
  assert.match(manifest.train[0].sha256, /^[0-9a-f]{64}$/);
  // The pixel head: fitted, judged on validation, reported in the output and the manifest, stored when kept.
  assert.match(
    ft.pixelHead,
    /^fitted on \d+ pixels in [\d.]+ s on (onnxruntime|js) \(loss [\d.]+ -> [\d.]+\); (kept|not kept): validation Boundary IoU/,
  );
  assert.equal(manifest.pixelHead, ft.pixelHead);
  const stored = JSON.parse(fs.readFileSync(path.join(model, 'versions', '0001', 'model.json'), 'utf8'));
  assert.equal(stored.userDefinedMetadata.maskloop.pixelHead !== undefined, /; kept/.test(ft.pixelHead));
  const dataset = JSON.parse(fs.readFileSync(path.join(root, '.maskloop', 'dataset.json'), 'utf8'));
  assert.equal(Object.keys(dataset.images).length, 5);

  const out = path.join(root, 'pred');
  const pred = json<{ written: { mask: string }[] }>(['predict', images, '--out', out]);
  assert.equal(pred.written.length, 5);
  const png = fs.readFileSync(pred.written[0].mask);
  assert.equal(png.subarray(1, 4).toString(), 'PNG');

  const ev = json<{
    images: number;
    miou: number;
    dice: number;
    boundaryIoU: number;
    boundaryF: number;
    perImage: { miou: number }[];
  }>(['eval', '--images', images, '--masks', truth]);
  assert.equal(ev.images, 5);
  for (const k of ['miou', 'dice', 'boundaryIoU', 'boundaryF'] as const) assert.ok(ev[k] >= 0 && ev[k] <= 1, k);
  assert.equal(ev.perImage.length, 5);

  const versions = json<{ current: number; versions: { version: number }[] }>(['versions']);
  assert.deepEqual(
    versions.versions.map((v) => v.version),
    [0, 1],
  );
  assert.equal(json<{ current: number }>(['rollback', '--to', '0']).current, 0);
  assert.equal(json<{ current: number }>(['versions']).current, 0);

  const sim = json<{
    steps: {
      image: string;
      modelVersion: number;
      changedFraction: number;
      boundaryIoU: number;
      emptyFraction: number;
    }[];
    fineTunes: { seconds: number }[];
    summary: {
      fromImage: number;
      images: number;
      changedFraction: number;
      withRejectFraction: number;
      emptyFraction: number;
      fineTuneSeconds: number;
    };
  }>(['simulate', '--images', images, '--masks', truth, '--every', '2', '--force', ...fast]);
  assert.equal(sim.steps.length, 5);
  assert.deepEqual(
    sim.steps.map((s) => s.modelVersion),
    [0, 0, 1, 1, 2],
  );
  // --force: every version becomes current, whatever two training steps did to the validation metrics.
  assert.equal(sim.fineTunes.length, 2);
  for (const s of sim.steps) assert.ok(s.changedFraction >= 0 && s.changedFraction <= 1);
  // Version 0 suggests nothing, so its images cost exactly what an empty suggestion costs.
  for (const s of sim.steps.filter((x) => x.modelVersion === 0))
    assert.ok(
      Math.abs(s.changedFraction - s.emptyFraction) < 1e-9,
      `${s.image}: ${s.changedFraction} vs ${s.emptyFraction}`,
    );
  assert.deepEqual([sim.summary.fromImage, sim.summary.images], [3, 3]);
  const later = sim.steps.slice(2);
  assert.ok(Math.abs(sim.summary.changedFraction - later.reduce((a, s) => a + s.changedFraction, 0) / 3) < 1e-9);
  assert.ok(
    Math.abs(
      sim.summary.withRejectFraction - later.reduce((a, s) => a + Math.min(s.changedFraction, s.emptyFraction), 0) / 3,
    ) < 1e-9,
  );
  assert.ok(Math.abs(sim.summary.fineTuneSeconds - sim.fineTunes.reduce((a, f) => a + f.seconds, 0)) < 1e-9);

  // --first-after 1: a fine-tune after the first image too, then after every 3rd. --sequence: each image's
  // suggestion follows the previous accepted mask (these scenes are no sequence, so the flow finds little).
  const early = json<{
    steps: { modelVersion: number; followsPrevious?: number }[];
    fineTunes: { afterImages: number }[];
  }>([
    'simulate',
    '--sequence',
    '--images',
    images,
    '--masks',
    truth,
    '--every',
    '3',
    '--first-after',
    '1',
    '--force',
    ...fast,
  ]);
  assert.deepEqual(
    early.fineTunes.map((f) => f.afterImages),
    [1, 3],
  );
  assert.deepEqual(
    early.steps.map((s) => s.modelVersion),
    [0, 1, 1, 2, 2],
  );
  assert.equal(early.steps[0].followsPrevious, undefined, 'the first image has no previous one');
  for (const s of early.steps.slice(1))
    assert.ok(s.followsPrevious !== undefined && s.followsPrevious >= 0 && s.followsPrevious <= 1);

  const bench = json<{
    backend: string;
    prelabelMs: Record<string, number>;
    train: { cropsPerSecond: number; threads: number; encoderForwardMs: number | null };
    trainTwoThreads?: { cropsPerSecond: number; threads: number };
    trainOnnx?: { cropsPerSecond: number; threads: number; encoderForwardMs: number | null };
    inference: { runtime: string };
    peakRssMiB: number;
    machine: { cpus: number };
    propagationMs: Record<string, number>;
    fineTuneRound: {
      images: number;
      seconds: number;
      peakRssMiB: number;
      steps: number;
      trainImages: number;
      validationImages: number;
      threads: string;
      timing: FineTuneTiming;
    };
  }>([
    'bench',
    '--sizes',
    '64,128',
    '--repeats',
    '1',
    '--train-steps',
    '1',
    '--train-crop',
    '32',
    '--round',
    '5',
    '--round-size',
    '64',
    '--round-epochs',
    '1',
    '--propagation',
    '96x64,128x72',
  ]);
  assert.deepEqual(Object.keys(bench.propagationMs), ['96x64', '128x72']);
  assert.ok(bench.propagationMs['96x64'] > 0);
  assert.equal(bench.fineTuneRound.images, 5);
  assert.deepEqual([bench.fineTuneRound.trainImages, bench.fineTuneRound.validationImages], [4, 1]);
  assert.ok(bench.fineTuneRound.seconds > 0 && bench.fineTuneRound.peakRssMiB > 0 && bench.fineTuneRound.steps >= 4);
  assert.equal(bench.backend, 'wasm');
  assert.ok(bench.prelabelMs['64'] > 0 && bench.prelabelMs['128'] > 0);
  assert.ok(bench.train.cropsPerSecond > 0 && bench.peakRssMiB > 0 && bench.machine.cpus > 0);
  assert.equal(bench.train.threads, 1);
  assert.ok(bench.train.encoderForwardMs !== null && bench.train.encoderForwardMs >= 0);
  // Two threads where the machine has two cores (training runs on wasm here) in the timed steps; and where
  // onnxruntime loads, the steps through it, and the round's steps there.
  const two = bench.machine.cpus >= 2;
  assert.equal(bench.trainTwoThreads?.threads, two ? 2 : undefined);
  const ort = bench.inference.runtime === 'onnxruntime';
  assert.equal(bench.trainOnnx !== undefined, ort);
  if (bench.trainOnnx) {
    assert.ok(bench.trainOnnx.cropsPerSecond > 0);
    assert.ok(bench.trainOnnx.encoderForwardMs !== null && bench.trainOnnx.encoderForwardMs >= 0);
  }
  assert.match(bench.fineTuneRound.threads, ort ? /^onnxruntime, \d+ threads/ : two ? /^two threads/ : /^one thread/);
  const t = bench.fineTuneRound.timing;
  assert.ok(t.training > 0 && t.contextHead >= 0 && t.validation >= 0 && t.pixelHead >= 0 && t.check >= 0);
  assert.ok(t.training + t.contextHead + t.validation + t.pixelHead + t.check <= bench.fineTuneRound.seconds + 0.5);
  assert.ok(t.crops !== undefined && t.crops > 0 && t.crops < t.training, `crops ${t.crops} of ${t.training} s`);
});

test('the CLI process loads no TensorFlow.js: all tensor work is in the model process', () => {
  const cli = fs.readFileSync(path.resolve(__dirname, '..', '..', 'dist', 'cli.js'), 'utf8');
  assert.doesNotMatch(cli, /require\("@tensorflow\//);
  assert.doesNotMatch(cli, /require\("onnxruntime-node"\)/);
  const server = fs.readFileSync(path.resolve(__dirname, '..', '..', 'dist', 'modelServer.js'), 'utf8');
  assert.match(server, /require\("@tensorflow\/tfjs-core"\)/, 'the model process does (the check can fail)');
});

test('bad inputs: one clear line naming the file, exit 1; usage mistakes exit 2', async () => {
  const dir = path.join(root, 'bad');
  await writeSampleData(dir, 2, 32, 9);
  const images = path.join(dir, 'images');
  const truth = path.join(dir, 'truth');
  const model = path.join(dir, 'model');

  assert.equal(run(['finetune', '--images', images]).code, 2, 'missing --masks is a usage error');
  assert.equal(run(['frobnicate']).code, 2);
  const badNumber = run(['finetune', '--images', images, '--masks', truth, '--epochs', 'many']);
  assert.equal(badNumber.code, 2);
  assert.match(badNumber.stderr, /--epochs must be a whole number/);
  const badSize = run(['bench', '--propagation', '480by360']);
  assert.equal(badSize.code, 2);
  assert.match(badSize.stderr, /--propagation: "480by360" is not a frame size/);
  const outOfRange = run(['finetune', '--images', images, '--masks', truth, '--hue-jitter', '1.5']);
  assert.equal(outOfRange.code, 2);
  assert.match(outOfRange.stderr, /--hue-jitter must be a number from 0 to 1, got "1\.5"/);

  const noModel = run(['predict', images, '--out', path.join(dir, 'o'), '--model', model]);
  assert.equal(noModel.code, 1);
  assert.match(noModel.stderr, /model\.json: no model here/);

  // An unreadable image.
  const broken = path.join(dir, 'broken');
  fs.mkdirSync(broken);
  fs.writeFileSync(path.join(broken, 'x.png'), 'garbage');
  const r1 = run(['predict', broken, '--out', path.join(dir, 'o'), '--model', model]);
  assert.equal(r1.code, 1);
  // Train a model so the remaining errors come from the data, not the missing model; --force makes version 1
  // current whatever its validation says (two steps on one 32x32 image need not pass the acceptance check).
  // On TF.js as asked (one or two gradient threads), not through onnxruntime.
  const forced = run(
    ['finetune', '--images', images, '--masks', truth, '--model', model, ...fast, '--force'].concat([
      '--training-runtime',
      'tfjs',
      '--json',
    ]),
  );
  assert.equal(forced.code, 0);
  assert.match((JSON.parse(forced.stdout) as { threads: string }).threads, /^(one|two) threads?\b/);
  assert.equal(run(['finetune', '--images', images, '--masks', truth, '--training-runtime', 'gpu']).code, 2);
  const r2 = run(['predict', path.join(broken, 'x.png'), '--out', path.join(dir, 'o'), '--model', model]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /x\.png: not a readable image/);
  assert.equal(r2.stderr.trim().split('\n').length, 1, 'one line');

  // Missing masks, a mask whose size does not match its image, a class outside the list.
  const empty = path.join(dir, 'empty');
  fs.mkdirSync(empty);
  const r3 = run(['finetune', '--images', images, '--masks', empty, '--model', model]);
  assert.equal(r3.code, 1);
  assert.match(r3.stderr, /empty: no masks match the images/);
  const wrong = path.join(dir, 'wrong');
  fs.mkdirSync(wrong);
  await writeMask(path.join(wrong, 'sample_001.png'), { width: 10, height: 10, data: new Uint8Array(100) });
  const r4 = run(['finetune', '--images', images, '--masks', wrong, '--model', model]);
  assert.equal(r4.code, 1);
  assert.match(r4.stderr, /wrong\/sample_001\.png: the mask is 10x10 but its image .*sample_001\.png is 32x32/);
  const high = path.join(dir, 'high');
  fs.mkdirSync(high);
  const data = new Uint8Array(32 * 32);
  data[40] = 7;
  await writeMask(path.join(high, 'sample_001.png'), { width: 32, height: 32, data });
  const r5 = run(['finetune', '--images', images, '--masks', high, '--model', model]);
  assert.equal(r5.code, 1);
  assert.match(r5.stderr, /high\/sample_001\.png: pixel 8,1 has class 7/);
  const before = fs.readFileSync(path.join(model, 'model.json'), 'utf8');

  // Masks as a data set ships them (0/255): refused with the command that converts them, which then works.
  const binary = path.join(dir, 'binary');
  fs.mkdirSync(binary);
  const truthMasks = fs.readdirSync(truth).filter((n) => n.endsWith('.png'));
  for (const n of truthMasks)
    await writeMask(path.join(binary, n), {
      width: 32,
      height: 32,
      data: new Uint8Array(32 * 32).map((_, i) => (i % 32 < 16 ? 255 : 0)),
    });
  const r8 = run(['finetune', '--images', images, '--masks', binary, '--model', model]);
  assert.equal(r8.code, 1);
  assert.match(r8.stderr, /binary\/sample_00\d\.png: the mask holds only 0 and 255.*maskloop import --from masks/);
  assert.equal(
    run(['import', '--from', 'coco', binary, '--to', path.join(dir, 'x'), '--map', '0=1']).code,
    2,
    '--map goes with --from masks',
  );
  assert.equal(run(['import', '--from', 'masks', binary, '--to', path.join(dir, 'x'), '--map', '0=1,25']).code, 2);
  const converted = path.join(dir, 'converted');
  const imported = json<{ written: string[]; skipped: unknown[] }>([
    'import',
    '--from',
    'masks',
    binary,
    '--to',
    converted,
    '--map',
    '0=0,255=1',
  ]);
  assert.equal(imported.skipped.length, 0);
  assert.equal(imported.written.filter((f) => f.endsWith('.png')).length, truthMasks.length);
  assert.deepEqual(
    fs
      .readFileSync(path.join(converted, 'labels.txt'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ')[0]),
    ['__ignore__', '_background_', 'class_1'],
  );
  assert.equal(run(['eval', '--images', images, '--masks', converted, '--model', model]).code, 0);

  // A fine-tune that learns nothing (a learning rate of 1e-9 from a new scratch model, no pixel head) says so and stays aside.
  const still = path.join(dir, 'still');
  const nothing = run([
    'finetune',
    '--images',
    images,
    '--masks',
    truth,
    '--model',
    still,
    '--encoder',
    'scratch',
    '--lr',
    '1e-9',
    // The network alone: the pixel head, fitted on the image's own features, would learn something.
    '--no-pixel-head',
    ...fast,
    '--json',
  ]);
  assert.equal(nothing.code, 0, nothing.stderr);
  const n = JSON.parse(nothing.stdout) as {
    accepted: boolean;
    current: number;
    reason: string;
    trainingFit: { learnedNothing: boolean; objectRecall: number };
  };
  assert.deepEqual([n.accepted, n.current, n.trainingFit.learnedNothing], [false, 0, true]);
  assert.match(n.reason, /^learned nothing: on its 2 training image\(s\)/);
  assert.equal(json<{ current: number }>(['versions', '--model', still]).current, 0);

  // A corrupt model: the error names the file and the way back; rollback repairs it.
  fs.writeFileSync(path.join(model, 'model.json'), '{ not json');
  const r6 = run(['eval', '--images', images, '--masks', truth, '--model', model]);
  assert.equal(r6.code, 1);
  assert.match(r6.stderr, /model\.json: the model file is corrupt.*maskloop rollback --to N/);
  assert.equal(run(['rollback', '--to', '1', '--model', model]).code, 0);
  assert.equal(
    fs.readFileSync(path.join(model, 'model.json'), 'utf8'),
    before,
    'rollback restores the same current model',
  );
  const r7 = run(['rollback', '--to', '9', '--model', model]);
  assert.equal(r7.code, 1);
  assert.match(r7.stderr, /no version 9; stored versions: 0, 1/);
});
