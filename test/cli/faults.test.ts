// The fault and bad-input suite: bad images, masks, class lists and files of every format, a damaged model
// store, file-system faults (a full disk, a read-only folder, files where folders belong) and kills at each stage
// of a fine-tune and a save. Every case asserts the exact outcome: the exit code, the one-line message (no stack
// trace), and that what the person had is unchanged, by checksum. docs/testing.md reports the counts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { writeSampleData } from '../../src/cli/demo';
import { readMask, writeMask } from '../../src/io/maskIO';
import { runCli, type CliRun } from './cliRun';

const injector = path.resolve(__dirname, 'faultInjector.helper.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-faults-'));
const data = path.join(root, 'data');
const images = path.join(data, 'images');
const truth = path.join(data, 'truth');
const classes = path.join(data, 'classes.txt');
/** A trained model every predict and eval case reads (copied where a case damages it). */
const model = path.join(root, 'model');
const fast = ['--encoder', 'scratch', '--epochs', '1', '--steps', '1', '--crop', '32', '--force'];
const mounts: string[] = [];

type Run = CliRun;

function run(args: string[], o: { cwd?: string; fault?: object; env?: Record<string, string> } = {}): Run {
  const env: Record<string, string | undefined> = { MASKLOOP_DEBUG: undefined, ...o.env };
  if (o.fault) {
    env.MASKLOOP_TEST_FAULT = JSON.stringify(o.fault);
    env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --require ${injector}`.trim();
  }
  return runCli(args, { cwd: o.cwd ?? root, env, timeoutMs: 300_000 });
}

/** Exit code and one line of stderr matching `message`, never a stack trace. */
function expectError(r: Run, code: number, message: RegExp): void {
  assert.equal(r.code, code, `exit code ${r.code}, stderr: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  assert.doesNotMatch(r.stderr, /internal error/);
}

/** SHA-256 of every file under `paths` (files or folders), by path. */
function snapshot(...paths: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (p: string): void => {
    if (!fs.existsSync(p)) return;
    if (fs.statSync(p).isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(path.join(p, n));
    else out.set(p, createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
  };
  for (const p of paths) walk(p);
  return out;
}

function assertUnchanged(before: Map<string, string>, ...paths: string[]): void {
  assert.deepEqual(snapshot(...paths), before, 'files unchanged');
}

function tempLeftovers(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string): void => {
    for (const n of fs.existsSync(p) ? fs.readdirSync(p) : []) {
      if (/\.tmp-\d+-\d+$/.test(n)) out.push(path.join(p, n));
      if (fs.statSync(path.join(p, n)).isDirectory()) walk(path.join(p, n));
    }
  };
  walk(dir);
  return out;
}

let caseNo = 0;
function dir(name: string): string {
  const d = path.join(root, `case-${++caseNo}-${name}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

function copyModel(to: string): string {
  fs.cpSync(model, to, { recursive: true });
  return to;
}

async function mask(file: string, value: (i: number) => number, size = 32): Promise<void> {
  await writeMask(file, { width: size, height: size, data: new Uint8Array(size * size).map((_, i) => value(i)) });
}

/** Mounts a small tmpfs (root only); null where this machine does not allow it. */
function tmpfs(name: string, size: string): string | null {
  const d = dir(name);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', d]);
  if (r.status !== 0) return null;
  mounts.push(d);
  return d;
}

before(async () => {
  await writeSampleData(data, 6, 32, 7);
  const r = run(['finetune', '--images', images, '--masks', truth, '--model', model, '--classes', classes, ...fast]);
  assert.equal(r.code, 0, r.stderr);
});

after(() => {
  for (const m of mounts) spawnSync('umount', ['-l', m]);
});

// ---- images ----

test('image: a text file named .png is named as not readable', () => {
  const d = dir('text-png');
  fs.writeFileSync(path.join(d, 'x.png'), 'this is not a PNG');
  expectError(
    run(['predict', path.join(d, 'x.png'), '--out', dir('out'), '--model', model]),
    1,
    /x\.png: not a readable image/,
  );
});

test('image: a truncated PNG', () => {
  const d = dir('truncated');
  fs.writeFileSync(path.join(d, 'x.png'), fs.readFileSync(path.join(images, 'sample_001.png')).subarray(0, 60));
  expectError(
    run(['predict', path.join(d, 'x.png'), '--out', dir('out'), '--model', model]),
    1,
    /x\.png: (not a readable image|the image could not be decoded)/,
  );
});

test('image: an empty JPEG', () => {
  const d = dir('empty-jpg');
  fs.writeFileSync(path.join(d, 'x.jpg'), '');
  expectError(
    run(['predict', path.join(d, 'x.jpg'), '--out', dir('out'), '--model', model]),
    1,
    /x\.jpg: not a readable image/,
  );
});

test('image: a folder with one bad image among good ones: the rest are done, the bad one named, exit 1', () => {
  const d = dir('mixed');
  for (const n of ['sample_001.png', 'sample_002.png']) fs.copyFileSync(path.join(images, n), path.join(d, n));
  fs.writeFileSync(path.join(d, 'bad.png'), 'garbage');
  const out = path.join(dir('out'), 'masks');
  const r = run(['predict', d, '--out', out, '--model', model]);
  expectError(r, 1, /skipped .*bad\.png: not a readable image[\s\S]*1 of 3 image\(s\) could not be pre-labelled/);
  assert.deepEqual(fs.readdirSync(out).sort(), ['sample_001.png', 'sample_002.png']);
});

test('image: a path that does not exist', () => {
  expectError(
    run(['predict', path.join(root, 'nowhere.png'), '--out', dir('out'), '--model', model]),
    1,
    /nowhere\.png: no such file or folder/,
  );
});

test('image: an empty folder', () => {
  expectError(run(['predict', dir('empty'), '--out', dir('out'), '--model', model]), 1, /no images found/);
});

test('image: over the pixel limit, with the way to raise it', () => {
  const r = run(['predict', path.join(images, 'sample_001.png'), '--out', dir('out'), '--model', model], {
    env: { MASKLOOP_MAX_PIXELS: '100' },
  });
  expectError(r, 1, /sample_001\.png: 32x32 = 1024 pixels is over the limit of 100; .*MASKLOOP_MAX_PIXELS/);
});

// ---- predict never overwrites what a person made ----

test('predict: --out the input folder is refused, nothing in it changes', () => {
  const d = dir('in-place');
  fs.cpSync(images, d, { recursive: true });
  const before = snapshot(d);
  expectError(
    run(['predict', d, '--out', d, '--model', model]),
    1,
    /holds the input images.*choose another --out folder/,
  );
  assertUnchanged(before, d);
});

test('predict: an existing mask is not overwritten without --force', async () => {
  const out = dir('existing');
  await mask(path.join(out, 'sample_001.png'), (i) => i % 3);
  const before = snapshot(out);
  expectError(
    run(['predict', path.join(images, 'sample_001.png'), '--out', out, '--model', model]),
    1,
    /sample_001\.png: exists; a mask there may be someone's corrections: use --force/,
  );
  assertUnchanged(before, out);
});

test('predict: --force overwrites the existing mask', async () => {
  const out = dir('existing-force');
  await mask(path.join(out, 'sample_001.png'), () => 2);
  const r = run(['predict', path.join(images, 'sample_001.png'), '--out', out, '--model', model, '--force']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readMask(path.join(out, 'sample_001.png'))).data.some((v) => v !== 2));
});

test('predict: x.png and x.jpg would write one mask: refused before anything runs', () => {
  const d = dir('twins');
  fs.copyFileSync(path.join(images, 'sample_001.png'), path.join(d, 'x.png'));
  fs.copyFileSync(path.join(images, 'sample_002.png'), path.join(d, 'x.jpg'));
  const out = path.join(dir('out'), 'masks');
  expectError(
    run(['predict', d, '--out', out, '--model', model]),
    1,
    /x\.png: .*x\.jpg and .*x\.png would both be written here|x\.png: .*x\.png and .*x\.jpg would both be written here/,
  );
  assert.equal(fs.existsSync(out), false, 'nothing written');
});

test('predict: --out is an existing file', () => {
  const file = path.join(dir('out-file'), 'masks');
  fs.writeFileSync(file, 'a file');
  const before = snapshot(file);
  expectError(
    run(['predict', path.join(images, 'sample_001.png'), '--out', file, '--model', model]),
    1,
    /masks: a file is in the way where a folder is needed/,
  );
  assertUnchanged(before, file);
});

test('predict: no model in the folder', () => {
  expectError(
    run(['predict', path.join(images, 'sample_001.png'), '--out', dir('out'), '--model', path.join(root, 'no-model')]),
    1,
    /model\.json: no model here/,
  );
});

// ---- masks ----

async function fineTuneCase(
  name: string,
  prepare: (masks: string) => Promise<void>,
  message: RegExp,
  extra: string[] = [],
): Promise<void> {
  const d = dir(name);
  const masks = path.join(d, 'masks');
  fs.mkdirSync(masks);
  for (const n of ['sample_001.png', 'sample_002.png']) fs.copyFileSync(path.join(truth, n), path.join(masks, n));
  await prepare(masks);
  const m = copyModel(path.join(d, 'model'));
  const before = snapshot(m, masks);
  expectError(run(['finetune', '--images', images, '--masks', masks, '--model', m, ...fast, ...extra]), 1, message);
  assertUnchanged(before, m, masks);
}

test('mask: the wrong size names both files', () =>
  fineTuneCase(
    'mask-size',
    (m) => mask(path.join(m, 'sample_001.png'), () => 1, 10),
    /sample_001\.png: the mask is 10x10 but its image .*sample_001\.png is 32x32/,
  ));

test('mask: a class outside the list names the pixel', () =>
  fineTuneCase(
    'mask-class',
    (m) => mask(path.join(m, 'sample_002.png'), (i) => (i === 40 ? 200 : 0)),
    /sample_002\.png: pixel 8,1 has class 200/,
  ));

test('mask: every pixel "ignore" is refused, with the import command', () =>
  fineTuneCase(
    'mask-ignore',
    (m) => mask(path.join(m, 'sample_001.png'), () => 255),
    /sample_001\.png: every pixel is 255.*maskloop import --from masks/,
  ));

test('mask: 0/255 as data sets ship them is refused, with the import command', () =>
  fineTuneCase(
    'mask-binary',
    (m) => mask(path.join(m, 'sample_001.png'), (i) => (i % 2 ? 255 : 0)),
    /sample_001\.png: the mask holds only 0 and 255.*--map/,
  ));

test('mask: not a PNG', () =>
  fineTuneCase(
    'mask-garbage',
    async (m) => fs.promises.writeFile(path.join(m, 'sample_001.png'), 'garbage'),
    /sample_001\.png: .*(not a PNG|PNG)/i,
  ));

test('mask: an RGB PNG is not an index mask', () =>
  fineTuneCase(
    'mask-rgb',
    async (m) => fs.promises.copyFile(path.join(images, 'sample_001.png'), path.join(m, 'sample_001.png')),
    /sample_001\.png: .*(single-channel|index|RGB|channel)/i,
  ));

test("mask: x.png and x.jpg with one mask x.png: the mask could be either's", async () => {
  const d = dir('stem-twins');
  const imgs = path.join(d, 'images');
  const masks = path.join(d, 'masks');
  fs.mkdirSync(imgs);
  fs.mkdirSync(masks);
  fs.copyFileSync(path.join(images, 'sample_001.png'), path.join(imgs, 'x.png'));
  fs.copyFileSync(path.join(images, 'sample_002.png'), path.join(imgs, 'x.jpg'));
  fs.copyFileSync(path.join(truth, 'sample_001.png'), path.join(masks, 'x.png'));
  expectError(
    run(['finetune', '--images', imgs, '--masks', masks, '--model', path.join(d, 'model'), ...fast]),
    1,
    /x\.png: x\.jpg and x\.png share the stem "x", so this mask could belong to either: rename one/,
  );
  assert.equal(fs.existsSync(path.join(d, 'model')), false, 'no model created');
});

test('mask: masks without an image are named, not dropped silently', () => {
  const d = dir('orphans');
  fs.cpSync(truth, d, { recursive: true });
  fs.copyFileSync(path.join(truth, 'sample_001.png'), path.join(d, 'typo_001.png'));
  const r = run(['eval', '--images', images, '--masks', d, '--model', model]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: 1 mask\(s\) have no image of the same stem in .* and were left out: typo_001\.png/);
});

test('mask: no mask matches any image', () => {
  expectError(
    run(['eval', '--images', images, '--masks', dir('no-masks'), '--model', model]),
    1,
    /no masks match the images/,
  );
});

// ---- class lists ----

test('classes: a class list that does not exist', () => {
  expectError(
    run([
      'finetune',
      '--images',
      images,
      '--masks',
      truth,
      '--model',
      path.join(dir('cls-missing'), 'model'),
      '--classes',
      path.join(root, 'nope.txt'),
      ...fast,
    ]),
    1,
    /nope\.txt/,
  );
});

test('classes: an empty class list', () => {
  const f = path.join(dir('cls-empty'), 'labels.txt');
  fs.writeFileSync(f, '');
  expectError(
    run([
      'finetune',
      '--images',
      images,
      '--masks',
      truth,
      '--model',
      path.join(path.dirname(f), 'model'),
      '--classes',
      f,
      ...fast,
    ]),
    1,
    /labels\.txt: /,
  );
});

test('classes: a name twice', () => {
  const f = path.join(dir('cls-dup'), 'labels.txt');
  fs.writeFileSync(f, '__ignore__\n_background_\ncar\ncar\n');
  expectError(
    run([
      'finetune',
      '--images',
      images,
      '--masks',
      truth,
      '--model',
      path.join(path.dirname(f), 'model'),
      '--classes',
      f,
      ...fast,
    ]),
    1,
    /labels\.txt: .*car/,
  );
});

test("classes: a list that differs from the existing model's is refused, not ignored", () => {
  const d = dir('cls-other');
  const f = path.join(d, 'labels.txt');
  fs.writeFileSync(f, '__ignore__\n_background_\ncat\ndog\n');
  const m = copyModel(path.join(d, 'model'));
  const before = snapshot(m);
  expectError(
    run(['finetune', '--images', images, '--masks', truth, '--model', m, '--classes', f, ...fast]),
    1,
    /this model's classes are 0=_background_, .* but the class list given is 0=_background_, 1=cat, 2=dog/,
  );
  assertUnchanged(before, m);
});

// ---- the model store ----

test('store: a corrupt model.json names the way back; versions still lists every version', () => {
  const m = copyModel(path.join(dir('corrupt-json'), 'model'));
  fs.writeFileSync(path.join(m, 'model.json'), '{ not json');
  expectError(
    run(['eval', '--images', images, '--masks', truth, '--model', m]),
    1,
    /model\.json: the model file is corrupt.*maskloop rollback --to N/,
  );
  const v = run(['versions', '--model', m]);
  expectError(v, 1, /model\.json: the model file is corrupt/);
  assert.match(v.stdout, / 0000 parent - /);
  assert.match(v.stdout, / 0001 parent 0 /);
  assert.equal(run(['rollback', '--to', '1', '--model', m]).code, 0, 'rollback repairs it');
});

test('store: model.json deleted while versions are kept: the way back, not a collision', () => {
  const m = copyModel(path.join(dir('deleted-json'), 'model'));
  fs.rmSync(path.join(m, 'model.json'));
  const before = snapshot(m);
  expectError(
    run(['finetune', '--images', images, '--masks', truth, '--model', m, ...fast]),
    1,
    /model\.json: missing, but 2 version\(s\) are stored .*maskloop rollback --to 1/,
  );
  assertUnchanged(before, m);
});

test('store: truncated weights', () => {
  const m = copyModel(path.join(dir('truncated-weights'), 'model'));
  const w = path.join(m, 'versions', '0001', 'weights.bin');
  fs.writeFileSync(w, fs.readFileSync(w).subarray(0, 100));
  expectError(
    run(['predict', path.join(images, 'sample_001.png'), '--out', dir('out'), '--model', m]),
    1,
    /the weights hold 100 bytes but the model needs \d+; the weights file is truncated/,
  );
});

test('store: weights of the right size changed on disk fail their checksum', () => {
  const m = copyModel(path.join(dir('nan-weights'), 'model'));
  const w = path.join(m, 'versions', '0001', 'weights.bin');
  fs.writeFileSync(w, Buffer.from(new Float32Array(fs.statSync(w).size / 4).fill(Number.NaN).buffer));
  expectError(
    run(['predict', path.join(images, 'sample_001.png'), '--out', dir('out'), '--model', m]),
    1,
    /model\.json: the weights do not match their checksum.*rollback/,
  );
});

test('store: NaN weights in a model written before checksums are refused too', () => {
  const m = copyModel(path.join(dir('nan-old'), 'model'));
  const w = path.join(m, 'versions', '0001', 'weights.bin');
  fs.writeFileSync(w, Buffer.from(new Float32Array(fs.statSync(w).size / 4).fill(Number.NaN).buffer));
  for (const f of [path.join(m, 'model.json'), path.join(m, 'versions', '0001', 'model.json')]) {
    const j = JSON.parse(fs.readFileSync(f, 'utf8')) as {
      userDefinedMetadata: { maskloop: { weightsSha256?: string } };
    };
    delete j.userDefinedMetadata.maskloop.weightsSha256;
    fs.writeFileSync(f, JSON.stringify(j));
  }
  expectError(
    run(['predict', path.join(images, 'sample_001.png'), '--out', dir('out'), '--model', m]),
    1,
    /the weights hold a value that is not a number/,
  );
});

test('store: one corrupt version manifest does not hide the others', () => {
  const m = copyModel(path.join(dir('corrupt-manifest'), 'model'));
  fs.writeFileSync(path.join(m, 'versions', '0000', 'manifest.json'), '{');
  const r = run(['versions', '--model', m]);
  expectError(r, 1, /0000[/\\]manifest\.json: cannot read the version manifest/);
  assert.match(r.stdout, /\* 0001 parent 0 /);
});

test('store: rollback to a version that does not exist', () => {
  expectError(
    run(['rollback', '--to', '9', '--model', copyModel(path.join(dir('rollback-9'), 'model'))]),
    1,
    /no version 9; stored versions: 0, 1/,
  );
});

test('store: the model folder is a file', () => {
  const f = path.join(dir('model-file'), 'model');
  fs.writeFileSync(f, 'x');
  const before = snapshot(f);
  expectError(
    run(['finetune', '--images', images, '--masks', truth, '--model', f, ...fast]),
    1,
    /model: a file is in the way where a folder is needed/,
  );
  assertUnchanged(before, f);
});

test('store: the split does not depend on the folder a command runs from', () => {
  const d = dir('split-cwd');
  const m = path.join(d, 'proj', '.maskloop', 'model');
  fs.mkdirSync(path.join(d, 'proj'), { recursive: true });
  fs.cpSync(images, path.join(d, 'proj', 'images'), { recursive: true });
  fs.cpSync(truth, path.join(d, 'proj', 'masks'), { recursive: true });
  const args = ['--model', m, ...fast, '--json'];
  const inside = run(['finetune', '--images', 'images', '--masks', 'masks', ...args], { cwd: path.join(d, 'proj') });
  assert.equal(inside.code, 0, inside.stderr);
  const outside = run(
    ['finetune', '--images', path.join('proj', 'images'), '--masks', path.join('proj', 'masks'), ...args],
    { cwd: d },
  );
  assert.equal(outside.code, 0, outside.stderr);
  const counts = (r: Run): number[] => {
    const j = JSON.parse(r.stdout) as { trainImages: number; validationImages: number };
    return [j.trainImages, j.validationImages];
  };
  assert.ok(counts(inside)[1] > 0, 'some images validate');
  assert.deepEqual(counts(outside), counts(inside), 'the same split from the parent folder');
});

test('store: every corrected image held out for validation: a clear message, not a stack trace', () => {
  const d = dir('all-validation');
  const m = path.join(d, '.maskloop', 'model');
  fs.mkdirSync(path.dirname(m), { recursive: true });
  const masks = path.join(d, 'masks');
  fs.mkdirSync(masks);
  for (const n of ['sample_001.png', 'sample_002.png']) fs.copyFileSync(path.join(truth, n), path.join(masks, n));
  const imgs = path.join(d, 'images');
  fs.cpSync(images, imgs, { recursive: true });
  const manifest = path.join(d, '.maskloop', 'dataset.json');
  fs.writeFileSync(
    manifest,
    JSON.stringify({
      format: 'maskloop-dataset',
      formatVersion: 1,
      validationFraction: 0.2,
      images: { 'images/sample_001.png': { split: 'validation' }, 'images/sample_002.png': { split: 'validation' } },
    }),
  );
  expectError(
    run(['finetune', '--images', imgs, '--masks', masks, '--model', m, ...fast]),
    1,
    /dataset\.json: all 2 corrected masks belong to images this dataset holds out for validation/,
  );
});

// ---- the file system ----

test('fs: the disk fills while a mask is written: the old mask stays, no temporary file is left', async () => {
  const out = dir('enospc-mask');
  await mask(path.join(out, 'sample_001.png'), () => 1);
  const before = snapshot(out);
  const r = run(['predict', path.join(images, 'sample_001.png'), '--out', out, '--model', model, '--force'], {
    fault: { op: 'write', match: '.sample_001.png.tmp-', code: 'ENOSPC' },
  });
  expectError(r, 1, /sample_001\.png\.tmp-\d+-\d+: the disk is full/);
  assertUnchanged(before, out);
  assert.deepEqual(tempLeftovers(out), []);
});

test('fs: a folder that refuses writes (EACCES)', () => {
  const out = dir('eacces');
  const r = run(['predict', path.join(images, 'sample_001.png'), '--out', out, '--model', model], {
    fault: { op: 'open', match: out, code: 'EACCES' },
  });
  expectError(r, 1, /permission denied: make it writable/);
  assert.deepEqual(fs.readdirSync(out), []);
});

test('fs: a read-only file system (a real read-only mount): the old mask stays', async (t) => {
  const out = tmpfs('ro', '1m');
  if (!out) return t.skip('mount is not allowed here');
  await mask(path.join(out, 'sample_001.png'), () => 1);
  assert.equal(spawnSync('mount', ['-o', 'remount,ro', out]).status, 0);
  const before = snapshot(out);
  expectError(
    run(['predict', path.join(images, 'sample_001.png'), '--out', out, '--model', model, '--force']),
    1,
    /the file system is read-only/,
  );
  assertUnchanged(before, out);
});

test('fs: a really full disk (a small tmpfs filled up): the old mask stays, nothing left behind', async (t) => {
  const out = tmpfs('full', '64k');
  if (!out) return t.skip('mount is not allowed here');
  await mask(path.join(out, 'sample_001.png'), () => 1);
  // Fill every free block.
  const fd = fs.openSync(path.join(out, 'filler'), 'w');
  try {
    for (;;) fs.writeSync(fd, Buffer.alloc(4096));
  } catch {
    // ENOSPC: full
  } finally {
    fs.closeSync(fd);
  }
  const before = snapshot(out);
  expectError(
    run(['predict', path.join(images, 'sample_001.png'), '--out', out, '--model', model, '--force']),
    1,
    /the disk is full/,
  );
  assertUnchanged(before, out);
  assert.deepEqual(tempLeftovers(out), []);
});

test('fs: the disk fills while a model version is written: no half version, the current model stays', () => {
  const m = copyModel(path.join(dir('enospc-version'), 'model'));
  const before = snapshot(m);
  const r = run(['finetune', '--images', images, '--masks', truth, '--model', m, ...fast], {
    fault: { op: 'write', match: 'weights.bin', code: 'ENOSPC' },
  });
  expectError(r, 1, /weights\.bin: the disk is full/);
  assertUnchanged(before, m);
  assert.deepEqual(tempLeftovers(m), []);
});

test('fs: a model folder that cannot be written is found before training', () => {
  const m = copyModel(path.join(dir('eacces-model'), 'model'));
  const before = snapshot(m);
  const r = run(['finetune', '--images', images, '--masks', truth, '--model', m, ...fast, '--json'], {
    fault: { op: 'open', match: 'write-probe', code: 'EACCES' },
  });
  expectError(r, 1, /write-probe.*permission denied/);
  assert.equal(r.stdout, '', 'no fine-tune result');
  assertUnchanged(before, m);
});

test('fs: the dataset manifest cannot be written: the model stays as it was', () => {
  const d = dir('enospc-manifest');
  const m = copyModel(path.join(d, 'model'));
  const before = snapshot(m);
  const r = run(['finetune', '--images', images, '--masks', truth, '--model', m, ...fast], {
    fault: { op: 'write', match: 'dataset.json', code: 'ENOSPC' },
  });
  expectError(r, 1, /dataset\.json\.tmp-\d+-\d+: the disk is full/);
  assertUnchanged(before, m);
  assert.deepEqual(tempLeftovers(d), []);
});

test('fs: export --out is a file', () => {
  const f = path.join(dir('export-file'), 'out');
  fs.writeFileSync(f, 'x');
  expectError(
    run(['export', '--to', 'labelme', '--images', images, '--masks', truth, '--out', f]),
    1,
    /a file is in the way where a folder is needed/,
  );
  assert.equal(fs.readFileSync(f, 'utf8'), 'x');
});

test('fs: import --to is a file', () => {
  const f = path.join(dir('import-file'), 'out');
  fs.writeFileSync(f, 'x');
  expectError(run(['import', '--from', 'masks', truth, '--to', f]), 1, /a file is in the way where a folder is needed/);
  assert.equal(fs.readFileSync(f, 'utf8'), 'x');
});

test('fs: the disk fills during an import: no temporary files are left', () => {
  const out = dir('enospc-import');
  expectError(
    run(['import', '--from', 'masks', truth, '--to', out], {
      fault: { op: 'write', match: '.sample_002.png.tmp-', code: 'ENOSPC' },
    }),
    1,
    /the disk is full/,
  );
  assert.deepEqual(tempLeftovers(out), []);
});

// ---- formats ----

function writeJson(name: string, value: unknown): string {
  const f = path.join(dir(name), `${name}.json`);
  fs.writeFileSync(f, typeof value === 'string' ? value : JSON.stringify(value));
  return f;
}

const coco = (over: { images?: unknown[]; annotations?: unknown[] }): unknown => ({
  images: over.images ?? [{ id: 1, file_name: 'a.png', width: 32, height: 32 }],
  annotations: over.annotations ?? [],
  categories: [{ id: 1, name: 'thing' }],
});

test('coco: malformed JSON', () => {
  expectError(
    run(['import', '--from', 'coco', writeJson('coco-bad', '{ "images": ['), '--to', dir('out')]),
    1,
    /coco-bad\.json: .*malformed JSON/,
  );
});

test('coco: an image declared 100000x100000 is skipped by the pixel limit, not an allocation failure', () => {
  const r = run([
    'import',
    '--from',
    'coco',
    writeJson('coco-huge', coco({ images: [{ id: 1, file_name: 'a.png', width: 100000, height: 100000 }] })),
    '--to',
    dir('out'),
  ]);
  expectError(r, 1, /item\(s\) skipped/);
  assert.match(r.stdout, /100000x100000 is over the pixel limit of \d+; .*MASKLOOP_MAX_PIXELS/);
});

test('coco: a string category_id is called a string, not missing', () => {
  const r = run([
    'import',
    '--from',
    'coco',
    writeJson(
      'coco-catstr',
      coco({ annotations: [{ id: 1, image_id: 1, category_id: '1', segmentation: [[1, 1, 10, 1, 10, 10]] }] }),
    ),
    '--to',
    dir('out'),
  ]);
  expectError(r, 1, /skipped/);
  assert.match(r.stdout, /category_id must be a number, got string "1"/);
});

test('coco: an annotation of an image not in "images"', () => {
  const r = run([
    'import',
    '--from',
    'coco',
    writeJson(
      'coco-noimg',
      coco({ annotations: [{ id: 1, image_id: 7, category_id: 1, segmentation: [[1, 1, 10, 1, 10, 10]] }] }),
    ),
    '--to',
    dir('out'),
  ]);
  expectError(r, 1, /skipped/);
  assert.match(r.stdout, /image_id 7 is not in "images"/);
});

test('coco: a polygon point far outside the image', () => {
  const r = run([
    'import',
    '--from',
    'coco',
    writeJson(
      'coco-outside',
      coco({ annotations: [{ id: 1, image_id: 1, category_id: 1, segmentation: [[1, 1, 500, 1, 10, 10]] }] }),
    ),
    '--to',
    dir('out'),
  ]);
  expectError(r, 1, /skipped/);
  assert.match(r.stdout, /outside the 32x32 image/);
});

const labelme = (over: Record<string, unknown>): unknown => ({
  version: '5.5.0',
  flags: {},
  imagePath: 'a.png',
  imageData: null,
  imageWidth: 32,
  imageHeight: 32,
  shapes: [
    {
      label: 'thing',
      points: [
        [1, 1],
        [10, 1],
        [10, 10],
      ],
      shape_type: 'polygon',
      flags: {},
    },
  ],
  ...over,
});

test('labelme: "points" that are not a list', () => {
  const r = run([
    'import',
    '--from',
    'labelme',
    writeJson('lm-points', labelme({ shapes: [{ label: 'thing', points: 5, shape_type: 'polygon' }] })),
    '--to',
    dir('out'),
  ]);
  expectError(r, 1, /skipped/);
  assert.match(r.stdout, /"points" must be a list of \[x, y\] pairs/);
});

test('labelme: a label not in the class list given', () => {
  const f = path.join(dir('lm-classes'), 'labels.txt');
  fs.writeFileSync(f, '__ignore__\n_background_\nother\n');
  const r = run([
    'import',
    '--from',
    'labelme',
    writeJson('lm-label', labelme({})),
    '--to',
    dir('out'),
    '--classes',
    f,
  ]);
  expectError(r, 1, /skipped/);
  assert.match(r.stdout, /label "thing" is not in the class list/);
});

test('labelme: a stated size that differs from the image beside it', () => {
  const f = writeJson('lm-size', labelme({ imagePath: 'a.png', imageWidth: 64, imageHeight: 64 }));
  fs.copyFileSync(path.join(images, 'sample_001.png'), path.join(path.dirname(f), 'a.png'));
  const out = dir('out');
  const r = run(['import', '--from', 'labelme', f, '--to', out]);
  expectError(r, 1, /skipped/);
  assert.match(r.stdout, /states the image is 64x64, but .*a\.png is 32x32/);
  assert.equal(fs.existsSync(path.join(out, 'a.png')), false, 'no mask of the wrong size');
});

test('labelme: no image size', () => {
  const r = run([
    'import',
    '--from',
    'labelme',
    writeJson('lm-nosize', labelme({ imageWidth: undefined })),
    '--to',
    dir('out'),
  ]);
  expectError(r, 1, /skipped/);
  assert.match(r.stdout, /"imageWidth" and "imageHeight" must be positive integers/);
});

test('voc: no class_names.txt: said, not invented silently', async () => {
  const d = dir('voc-nonames');
  fs.mkdirSync(path.join(d, 'SegmentationClass'));
  await mask(path.join(d, 'SegmentationClass', 'a.png'), (i) => (i % 5 === 0 ? 1 : 0));
  const r = run(['import', '--from', 'voc', d, '--to', dir('out')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /note: no class_names\.txt in .*: the classes are named by their values .*pass --classes/);
});

test('voc: no SegmentationClass folder', () => {
  expectError(run(['import', '--from', 'voc', dir('voc-empty'), '--to', dir('out')]), 1, /SegmentationClass/);
});

test('yolo: data.yaml that is not YAML', () => {
  const d = dir('yolo-yaml');
  fs.writeFileSync(path.join(d, 'data.yaml'), 'names: [a, b\n');
  expectError(run(['import', '--from', 'yolo', d, '--to', dir('out')]), 1, /data\.yaml.*not valid YAML/);
});

function yoloSet(name: string, label: string): string {
  const d = dir(name);
  fs.mkdirSync(path.join(d, 'images'));
  fs.mkdirSync(path.join(d, 'labels'));
  fs.writeFileSync(path.join(d, 'data.yaml'), 'names: [thing]\n');
  fs.copyFileSync(path.join(images, 'sample_001.png'), path.join(d, 'images', 'a.png'));
  fs.writeFileSync(path.join(d, 'labels', 'a.txt'), label);
  return d;
}

test("yolo: a class beyond data.yaml's names", () => {
  const r = run(['import', '--from', 'yolo', yoloSet('yolo-class', '3 0.1 0.1 0.5 0.1 0.5 0.5\n'), '--to', dir('out')]);
  expectError(r, 1, /skipped/);
  assert.match(r.stdout, /class 3 is not one of the 1 classes in data\.yaml/);
});

test('yolo: a detection box is not a segmentation polygon', () => {
  const r = run(['import', '--from', 'yolo', yoloSet('yolo-box', '0 0.5 0.5 0.2 0.2\n'), '--to', dir('out')]);
  expectError(r, 1, /skipped/);
  assert.match(r.stdout, /a detection box/);
});

test('masks: a value not in --map', async () => {
  const d = dir('map-missing');
  await mask(path.join(d, 'a.png'), (i) => (i % 2 ? 7 : 0));
  const r = run(['import', '--from', 'masks', d, '--to', dir('out'), '--map', '0=0,255=1']);
  expectError(r, 1, /skipped/);
  assert.match(r.stdout, /a\.png: .*7/);
});

test('export: onto existing files without --force: the rest is written, nothing overwritten, exit 1', () => {
  const out = dir('export-existing');
  assert.equal(run(['export', '--to', 'labelme', '--images', images, '--masks', truth, '--out', out]).code, 0);
  fs.writeFileSync(path.join(out, 'sample_001.json'), '{"edited": true}');
  const before = snapshot(out);
  const r = run(['export', '--to', 'labelme', '--images', images, '--masks', truth, '--out', out]);
  expectError(r, 1, /item\(s\) skipped .*--force/);
  assert.match(r.stdout, /skipped .*sample_001\.json: already exists \(use --force to overwrite\)/);
  assertUnchanged(before, out);
});

test('export: YOLO into a folder with a data.yaml of other classes: kept and said, exit 1', () => {
  const out = dir('yolo-stale');
  fs.writeFileSync(path.join(out, 'data.yaml'), 'names: [old]\n');
  const r = run(['export', '--to', 'yolo', '--images', images, '--masks', truth, '--out', out, '--classes', classes]);
  expectError(r, 1, /item\(s\) skipped/);
  assert.match(r.stdout, /data\.yaml: already exists/);
  assert.equal(fs.readFileSync(path.join(out, 'data.yaml'), 'utf8'), 'names: [old]\n');
});

test('export: COCO onto an existing file', () => {
  const f = path.join(dir('coco-existing'), 'annotations.json');
  fs.writeFileSync(f, '{"mine": 1}');
  expectError(
    run(['export', '--to', 'coco', '--images', images, '--masks', truth, '--out', f]),
    1,
    /annotations\.json: already exists \(use --force/,
  );
  assert.equal(fs.readFileSync(f, 'utf8'), '{"mine": 1}');
});

// ---- kills ----

/** A fine-tune killed at one stage: the model as it was, every stored version intact, the next fine-tune works. */
function killedFineTune(stage: string, fault: object): void {
  test(`kill: a fine-tune killed ${stage}: the current model and every version intact; the next one works`, () => {
    const m = copyModel(path.join(dir(`kill-${caseNo}`), 'model'));
    const before = snapshot(
      path.join(m, 'model.json'),
      path.join(m, 'versions', '0000'),
      path.join(m, 'versions', '0001'),
    );
    const r = run(['finetune', '--images', images, '--masks', truth, '--model', m, ...fast], { fault });
    assert.notEqual(r.code, 0, 'the fine-tune died');
    assertUnchanged(
      before,
      path.join(m, 'model.json'),
      path.join(m, 'versions', '0000'),
      path.join(m, 'versions', '0001'),
    );
    const v = run(['versions', '--model', m]);
    assert.equal(v.code, 0, v.stderr);
    const again = run(['finetune', '--images', images, '--masks', truth, '--model', m, ...fast]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(tempLeftovers(m), [], "the dead writer's temporary files are swept");
  });
}

killedFineTune('while writing the new weights', { op: 'kill-on-open', match: 'weights.bin' });
killedFineTune('while writing the version manifest', { op: 'kill-on-open', match: 'manifest.json' });
killedFineTune('as the version folder is renamed into place', {
  op: 'kill-on-rename',
  match: `versions${path.sep}0002`,
});

test('kill: a fine-tune killed as the new version becomes current: the old or the new model, whole', () => {
  const m = copyModel(path.join(dir('kill-current'), 'model'));
  const r = run(['finetune', '--images', images, '--masks', truth, '--model', m, ...fast], {
    fault: { op: 'kill-on-rename', match: `${path.sep}model.json` },
  });
  assert.notEqual(r.code, 0);
  const v = run(['versions', '--model', m, '--json']);
  assert.equal(v.code, 0, v.stderr);
  assert.equal((JSON.parse(v.stdout) as { current: number }).current, 1, 'the old version is still current');
  assert.ok(fs.existsSync(path.join(m, 'versions', '0002', 'weights.bin')), 'the new version is stored whole');
  assert.equal(run(['eval', '--images', images, '--masks', truth, '--model', m]).code, 0);
});

test('kill: a save killed as the mask is renamed into place: the old mask stays whole', async () => {
  const out = dir('kill-save');
  await mask(path.join(out, 'sample_001.png'), () => 1);
  const before = snapshot(path.join(out, 'sample_001.png'));
  const r = run(['predict', path.join(images, 'sample_001.png'), '--out', out, '--model', model, '--force'], {
    fault: { op: 'kill-on-rename', match: 'sample_001.png' },
  });
  assert.notEqual(r.code, 0);
  assertUnchanged(before, path.join(out, 'sample_001.png'));
  assert.deepEqual((await readMask(path.join(out, 'sample_001.png'))).data, new Uint8Array(32 * 32).fill(1));
});

test('kill: an import killed mid-write: the masks already there stay whole', async () => {
  const out = dir('kill-import');
  await mask(path.join(out, 'sample_002.png'), () => 1);
  const before = snapshot(path.join(out, 'sample_002.png'));
  const r = run(['import', '--from', 'masks', truth, '--to', out, '--force'], {
    fault: { op: 'kill-on-rename', match: 'sample_002.png' },
  });
  assert.notEqual(r.code, 0);
  assertUnchanged(before, path.join(out, 'sample_002.png'));
});
