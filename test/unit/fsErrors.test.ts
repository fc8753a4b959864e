import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { probeWritable, writeFileAtomic } from '../../src/io/atomicWrite';
import { orphanNote, pairImagesWithMasks } from '../../src/io/datasetPairs';
import { describeFsError, errorText, fsErrorCode } from '../../src/masks/fsErrors';
import { failedItems } from '../../src/formats/formatTypes';

const errno = (code: string, extra: Record<string, string> = {}): NodeJS.ErrnoException =>
  Object.assign(new Error(`${code}: x`), { code, syscall: 'open', path: '/data/m.png', ...extra });

test('file-system errors: one line naming the path, what is wrong and what to do', () => {
  assert.equal(
    describeFsError(errno('ENOSPC')),
    '/data/m.png: the disk is full: free some space, then run it again (nothing that existed was changed) (ENOSPC on open)',
  );
  assert.match(describeFsError(errno('EACCES'))!, /^\/data\/m\.png: permission denied: make it writable/);
  assert.match(describeFsError(errno('EROFS'))!, /read-only/);
  assert.match(describeFsError(errno('ENOTDIR'))!, /a file is in the way where a folder is needed/);
  assert.match(describeFsError(errno('EISDIR'))!, /a folder is in the way where a file is needed/);
  assert.equal(describeFsError(errno('EXDEV')), undefined, 'codes it cannot explain are left alone');
  assert.equal(describeFsError(new Error('plain')), undefined);
  assert.equal(fsErrorCode(errno('EEXIST')), 'EEXIST');
  // A rename names its destination.
  assert.match(describeFsError(errno('EACCES', { dest: '/data/final.png' }))!, /^\/data\/final\.png: /);
});

test('errorText: the fs explanation, else the first line without the stack or the error class', () => {
  assert.match(errorText(errno('ENOSPC')), /the disk is full/);
  const bug = new Error('Error: boom\n    at f (x.js:1:2)');
  assert.equal(errorText(bug), 'boom');
  assert.equal(errorText('text'), 'text');
});

test('an atomic write that fails leaves the old file and no temporary file; the probe leaves nothing', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-fserr-'));
  const target = path.join(dir, 'a.png');
  fs.writeFileSync(target, 'old');
  fs.mkdirSync(path.join(dir, 'folder.png'));
  await assert.rejects(
    writeFileAtomic(path.join(dir, 'folder.png'), 'new'),
    (err: NodeJS.ErrnoException) => err.code === 'EISDIR' || err.code === 'EEXIST' || err.code === 'ENOTEMPTY',
  );
  assert.deepEqual(fs.readdirSync(dir).sort(), ['a.png', 'folder.png']);
  await probeWritable(path.join(dir, 'sub'));
  assert.deepEqual(fs.readdirSync(path.join(dir, 'sub')), []);
  fs.writeFileSync(path.join(dir, 'file'), 'x');
  await assert.rejects(
    probeWritable(path.join(dir, 'file')),
    (err: NodeJS.ErrnoException) => err.code === 'EEXIST' || err.code === 'ENOTDIR',
  );
  assert.equal(fs.readFileSync(target, 'utf8'), 'old');
});

test('pairing: twins of one stem with a mask are an error; masks without an image are listed', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-pairs-'));
  const images = path.join(dir, 'images');
  const masks = path.join(dir, 'masks');
  fs.mkdirSync(images);
  fs.mkdirSync(masks);
  for (const n of ['a.png', 'b.jpg', 'c.png']) fs.writeFileSync(path.join(images, n), '');
  for (const n of ['a.png', 'b.mask.png', 'typo.png', 'c.suggestion.png', '.hidden.png'])
    fs.writeFileSync(path.join(masks, n), '');
  const r = await pairImagesWithMasks(images, masks);
  assert.deepEqual(
    r.pairs.map((p) => path.basename(p.mask)),
    ['a.png', 'b.mask.png'],
  );
  assert.deepEqual(
    r.unlabelled.map((u) => path.basename(u)),
    ['c.png'],
  );
  assert.deepEqual(
    r.orphans.map((o) => path.basename(o)),
    ['typo.png'],
  );
  assert.match(
    orphanNote(r.orphans, images),
    /^1 mask\(s\) have no image of the same stem in .* and were left out: typo\.png$/,
  );
  assert.equal(orphanNote([], images), '');
  fs.writeFileSync(path.join(images, 'a.jpg'), '');
  await assert.rejects(pairImagesWithMasks(images, masks), /a\.png: a\.jpg and a\.png share the stem "a"/);
  // Same folder: only .mask.png files are masks; one without its image is named.
  const same = await pairImagesWithMasks(masks, masks);
  assert.deepEqual(
    same.orphans.map((o) => path.basename(o)),
    ['b.mask.png'],
  );
});

test('a batch fails on bad items only, not on images that have no mask yet', () => {
  assert.deepEqual(failedItems([{ item: 'a', why: 'no mask', expected: true }]), []);
  assert.equal(
    failedItems([
      { item: 'a', why: 'no mask', expected: true },
      { item: 'b', why: 'exists' },
    ]).length,
    1,
  );
});
