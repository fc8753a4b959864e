import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { encode } from 'fast-png';
import sharp from 'sharp';
import { writeFileAtomic } from '../../src/io/atomicWrite';
import { pairImagesWithMasks } from '../../src/io/datasetPairs';
import { decodeImage } from '../../src/io/imageIO';
import { decodeMaskPng, readMask, writeMask } from '../../src/io/maskIO';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-io-'));

function rgb(w: number, h: number): Buffer {
  const b = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    b[i * 3] = i % 256;
    b[i * 3 + 1] = (i * 7) % 256;
    b[i * 3 + 2] = 200;
  }
  return b;
}

function raw16(w: number, h: number): Uint16Array {
  const b = new Uint16Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    b[i * 3] = (i % 256) * 257;
    b[i * 3 + 1] = ((i * 7) % 256) * 257;
    b[i * 3 + 2] = 200 * 257;
  }
  return b;
}

test('decodes PNG, JPEG, WebP, TIFF 8/16-bit, GIF, grey and RGBA to 8-bit RGB', async () => {
  const raw = rgb(6, 4);
  const src = sharp(raw, { raw: { width: 6, height: 4, channels: 3 } });
  const files: Record<string, Buffer> = {
    'a.png': await src.clone().png().toBuffer(),
    'a.jpg': await src.clone().jpeg({ quality: 100 }).toBuffer(),
    'a.webp': await src.clone().webp({ lossless: true }).toBuffer(),
    'a.tif': await src.clone().tiff({ compression: 'lzw' }).toBuffer(),
    'a16.tif': await sharp(raw16(6, 4), { raw: { width: 6, height: 4, channels: 3 } })
      .toColourspace('rgb16')
      .tiff({ compression: 'lzw' })
      .toBuffer(),
    'a.gif': await src.clone().gif().toBuffer(),
    'grey.png': await sharp(Buffer.alloc(24, 77), { raw: { width: 6, height: 4, channels: 1 } })
      .png()
      .toBuffer(),
    'rgba.png': await sharp(Buffer.alloc(96, 128), { raw: { width: 6, height: 4, channels: 4 } })
      .png()
      .toBuffer(),
  };
  for (const [name, bytes] of Object.entries(files)) {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, bytes);
    const img = await decodeImage(f);
    assert.equal(img.width, 6, name);
    assert.equal(img.height, 4, name);
    assert.equal(img.data.length, 6 * 4 * 3, name);
  }
  const png = await decodeImage(path.join(tmp, 'a.png'));
  assert.deepEqual([...png.data.subarray(0, 6)], [0, 0, 200, 1, 7, 200]);
  const t16 = await decodeImage(path.join(tmp, 'a16.tif'));
  assert.deepEqual([...t16.data.subarray(0, 6)], [0, 0, 200, 1, 7, 200], '16-bit TIFF scales to 8 bits');
  assert.deepEqual([...(await decodeImage(path.join(tmp, 'a.tif'))).data.subarray(0, 6)], [0, 0, 200, 1, 7, 200]);
  const grey = await decodeImage(path.join(tmp, 'grey.png'));
  assert.deepEqual([...grey.data.subarray(0, 3)], [77, 77, 77]);
});

test('EXIF orientation is honoured', async () => {
  const f = path.join(tmp, 'rot.jpg');
  // Stored 6 wide x 4 high with orientation 6 (rotate 90 clockwise to display): shown 4 wide x 6 high.
  fs.writeFileSync(
    f,
    await sharp(rgb(6, 4), { raw: { width: 6, height: 4, channels: 3 } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer(),
  );
  const img = await decodeImage(f);
  assert.deepEqual([img.width, img.height], [4, 6]);
});

test('pixel limit, corrupt and missing images give errors naming the file', async () => {
  const big = path.join(tmp, 'big.png');
  fs.writeFileSync(
    big,
    await sharp({ create: { width: 300, height: 300, channels: 3, background: '#000' } })
      .png()
      .toBuffer(),
  );
  await assert.rejects(
    decodeImage(big, { maxPixels: 1000 }),
    (e: Error) => e.message.startsWith(big) && /over the limit/.test(e.message),
  );
  const bad = path.join(tmp, 'bad.png');
  fs.writeFileSync(bad, 'not an image');
  await assert.rejects(
    decodeImage(bad),
    (e: Error) => e.message.startsWith(bad) && /not a readable image/.test(e.message),
  );
  await assert.rejects(decodeImage(path.join(tmp, 'missing.png')), /ENOENT/);
});

test('masks: grey index PNG round trip; palette PNGs read by index, not colour', async () => {
  const m = { width: 5, height: 2, data: new Uint8Array([0, 1, 2, 12, 255, 0, 0, 3, 3, 1]) };
  const f = path.join(tmp, 'm.png');
  await writeMask(f, m);
  assert.deepEqual(await readMask(f), m);
  const palette = [
    [0, 0, 0],
    [128, 0, 0],
    [0, 128, 0],
    [128, 128, 0],
  ] as [number, number, number][];
  const pal8 = encode({ width: 4, height: 1, data: new Uint8Array([0, 3, 2, 1]), channels: 1, depth: 8, palette });
  assert.deepEqual([...decodeMaskPng(pal8, 'p8.png').data], [0, 3, 2, 1]);
  const pal2 = encode({
    width: 5,
    height: 2,
    data: new Uint8Array([0b00111001, 0b11000000, 0b01101100, 0b00000000]),
    channels: 1,
    depth: 2,
    palette,
  });
  assert.deepEqual([...decodeMaskPng(pal2, 'p2.png').data], [0, 3, 2, 1, 3, 1, 2, 3, 0, 0]);
});

test('colour masks and non-PNG masks are refused with the file named', () => {
  const colour = encode({ width: 2, height: 1, data: new Uint8Array([1, 1, 1, 200, 0, 0]), channels: 3, depth: 8 });
  assert.throws(() => decodeMaskPng(colour, 'c.png'), /^InputError: c\.png: the mask is a colour PNG \(pixel 1,0/);
  const grey3 = encode({ width: 2, height: 1, data: new Uint8Array([1, 1, 1, 2, 2, 2]), channels: 3, depth: 8 });
  assert.deepEqual([...decodeMaskPng(grey3, 'g.png').data], [1, 2]);
  assert.throws(() => decodeMaskPng(new Uint8Array([1, 2, 3]), 'x.jpg'), /x\.jpg: a mask must be a PNG/);
});

test('atomic write replaces whole files and leaves no temp files', async () => {
  const f = path.join(tmp, 'atomic', 'a.json');
  await writeFileAtomic(f, 'one');
  await writeFileAtomic(f, 'two');
  assert.equal(fs.readFileSync(f, 'utf8'), 'two');
  assert.deepEqual(fs.readdirSync(path.dirname(f)), ['a.json']);
});

test('images pair with masks by stem; sidecars are not images', async () => {
  const dir = path.join(tmp, 'pairs');
  const masks = path.join(tmp, 'pairs-masks');
  fs.mkdirSync(dir);
  fs.mkdirSync(masks);
  for (const n of ['b.jpg', 'a.png', 'a.mask.png', 'c.tif']) fs.writeFileSync(path.join(dir, n), '');
  fs.writeFileSync(path.join(masks, 'a.png'), '');
  fs.writeFileSync(path.join(masks, 'c.mask.png'), '');
  const { pairs, unlabelled } = await pairImagesWithMasks(dir, masks);
  assert.deepEqual(
    pairs.map((p) => [path.basename(p.image), path.basename(p.mask)]),
    [
      ['a.png', 'a.png'],
      ['c.tif', 'c.mask.png'],
    ],
  );
  assert.deepEqual(
    unlabelled.map((p) => path.basename(p)),
    ['b.jpg'],
  );
  const same = await pairImagesWithMasks(dir, dir);
  assert.deepEqual(
    same.pairs.map((p) => path.basename(p.mask)),
    ['a.mask.png'],
  );
});
