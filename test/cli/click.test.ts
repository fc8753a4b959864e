import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { encodeRgbPng } from '../../src/io/imageIO';
import { readMask, writeMask } from '../../src/io/maskIO';
import { samFixtureDecoder, samFixtureEncoder } from '../engine/samFixture';
import { jsonCli, runCli } from './cliRun';

test('maskloop click: a click and a box become a mask through a SAM-layout pair; bad input is named', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-click-'));
  try {
    const models = path.join(root, 'models');
    fs.mkdirSync(models);
    fs.writeFileSync(path.join(models, 'tiny.encoder.onnx'), samFixtureEncoder());
    fs.writeFileSync(path.join(models, 'tiny.decoder.onnx'), samFixtureDecoder());
    // 100x60: dark left, bright right.
    const data = new Uint8Array(100 * 60 * 3);
    for (let i = 0; i < 100 * 60; i++) data.fill(i % 100 >= 50 ? 230 : 20, i * 3, i * 3 + 3);
    fs.writeFileSync(path.join(root, 'img.png'), await encodeRgbPng({ width: 100, height: 60, data }));
    const cwd = root;
    const out = jsonCli<{ candidates: { score: number; area: number }[]; embedding: string; candidate: number }>(
      [
        'click',
        'img.png',
        '--click-model',
        'models',
        '--points',
        '30,25',
        '--class',
        '2',
        '--out',
        'obj.png',
        '--cache',
        'cache',
      ],
      { cwd },
    );
    assert.equal(out.candidates.length, 3);
    assert.equal(out.embedding, 'computed');
    const mask = await readMask(path.join(root, 'obj.png'));
    assert.equal(mask.data[25 * 100 + 30], 2, 'the clicked pixel is the object, as class 2');
    assert.equal(mask.data[55 * 100 + 95], 0);
    assert.equal(fs.readdirSync(path.join(root, 'cache')).length, 1, 'the embedding was cached');
    // The second candidate (the bright half) over a base mask, naming the encoder file itself.
    await writeMask(path.join(root, 'base.png'), { width: 100, height: 60, data: new Uint8Array(6000).fill(1) });
    const second = jsonCli<{ embedding: string }>(
      [
        'click',
        'img.png',
        '--click-model',
        'models/tiny.encoder.onnx',
        '--box',
        '50,0,99,59',
        '--candidate',
        '1',
        '--base',
        'base.png',
        '--class',
        '3',
        '--out',
        'over.png',
        '--cache',
        'cache',
      ],
      { cwd },
    );
    assert.equal(second.embedding, 'disk', 'a new process reads the cached embedding');
    const over = await readMask(path.join(root, 'over.png'));
    assert.equal(over.data[10 * 100 + 90], 3);
    assert.equal(over.data[10 * 100 + 10], 1, 'the base mask stays outside the object');

    const fails = (args: string[], code: number, pattern: RegExp): void => {
      const r = runCli(args, { cwd });
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    };
    fails(
      ['click', 'img.png', '--click-model', 'models', '--points', '30,25', '--out', 'obj.png'],
      1,
      /obj\.png: exists; add --force/,
    );
    fails(
      ['click', 'img.png', '--click-model', 'nowhere', '--points', '1,1', '--out', 'x.png'],
      1,
      /nowhere: its encoder nowhere\.encoder\.onnx is not there/,
    );
    fails(
      ['click', 'img.png', '--click-model', 'models', '--points', '1;2', '--out', 'x.png'],
      2,
      /--points 1;2: give pixel positions as X,Y/,
    );
    fails(['click', 'img.png', '--click-model', 'models', '--out', 'x.png'], 2, /give --points, --negative or --box/);
    fails(
      ['click', 'img.png', '--click-model', 'models', '--points', '500,20', '--out', 'x.png'],
      1,
      /img\.png: the click at 500\.5,20\.5 is outside the image \(100x60\)/,
    );
    fs.writeFileSync(path.join(models, 'tiny.decoder.onnx'), samFixtureDecoder({ withoutLabels: true }));
    fails(
      ['click', 'img.png', '--click-model', 'models', '--points', '30,25', '--out', 'x.png'],
      1,
      /the decoder has no point_labels input\. Supported: SAM, MobileSAM and SAM 2/,
    );
    assert.ok(!fs.existsSync(path.join(root, 'x.png')), 'no mask written by a failed command');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('maskloop clicks: the click protocol on every object, NoC capped, polygon vertices beside it', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-clicks-'));
  try {
    fs.mkdirSync(path.join(root, 'images'));
    fs.mkdirSync(path.join(root, 'masks'));
    fs.writeFileSync(path.join(root, 'tiny.encoder.onnx'), samFixtureEncoder());
    fs.writeFileSync(path.join(root, 'tiny.decoder.onnx'), samFixtureDecoder());
    const data = new Uint8Array(100 * 60 * 3);
    const truth = new Uint8Array(100 * 60);
    for (let i = 0; i < 100 * 60; i++) {
      data.fill(i % 100 >= 50 ? 230 : 20, i * 3, i * 3 + 3);
      truth[i] = i % 100 >= 50 ? 1 : 0;
    }
    fs.writeFileSync(path.join(root, 'images', 'a.png'), await encodeRgbPng({ width: 100, height: 60, data }));
    await writeMask(path.join(root, 'masks', 'a.png'), { width: 100, height: 60, data: truth });
    fs.writeFileSync(path.join(root, 'labels.txt'), '__ignore__\n_background_\nbright\n');
    const r = jsonCli<{
      objects: number;
      noc85: number;
      noc90: number;
      failed90: number;
      floor90: number;
      polygon85: number;
      clicks: number;
      perClass: { name: string; objects: number }[];
      perObject: { ious: number[]; noc85: number }[];
    }>(
      [
        'clicks',
        '--images',
        'images',
        '--masks',
        'masks',
        '--sam',
        'tiny.encoder.onnx',
        '--classes',
        'labels.txt',
        '--max-clicks',
        '3',
      ],
      { cwd: root },
    );
    assert.equal(r.objects, 2, 'the two halves');
    assert.deepEqual(
      r.perClass.map((c) => [c.name, c.objects]),
      [
        ['_background_', 1],
        ['bright', 1],
      ],
    );
    assert.equal(r.polygon85, 4, 'a rectangle is four polygon vertices');
    for (const o of r.perObject) {
      assert.ok(o.ious.length >= 1 && o.ious.length <= 3);
      assert.ok(o.noc85 >= 1 && o.noc85 <= 3);
    }
    assert.equal(
      r.clicks,
      r.perObject.reduce((a, o) => a + o.ious.length, 0),
    );
    // The objects that never reach 0.90 within the 3 clicks, and the floor they put under NoC@90.
    const failed = r.perObject.filter((o) => !o.ious.some((v) => v >= 0.9)).length / r.perObject.length;
    assert.equal(r.failed90, failed);
    assert.equal(r.floor90, failed * 3 + (1 - failed));
    assert.ok(r.noc90 >= r.floor90);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
