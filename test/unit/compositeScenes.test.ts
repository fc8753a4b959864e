import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { readSceneLibrary } from '../../src/cli/sceneData';
import { compositeScene, SCENE_CLASSES, type SceneLibrary } from '../../src/synthetic/compositeScenes';
import type { RgbImage } from '../../src/masks/maskImage';

function flat(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { width, height, data };
}

/** A white silhouette image with a dark filled square in the middle (the object side is dark, as skimage's horse). */
function square(): RgbImage {
  const img = flat(40, 40, [255, 255, 255]);
  for (let y = 10; y < 30; y++) for (let x = 10; x < 30; x++) img.data.set([0, 0, 0], (y * 40 + x) * 3);
  return img;
}

const tiny: SceneLibrary = {
  backgrounds: [flat(80, 60, [20, 40, 60])],
  textures: { animal: [flat(50, 50, [200, 180, 160])], stone: [flat(50, 50, [220, 220, 220])] },
  silhouettes: [square()],
};

test('composite scenes are deterministic with a seed, and their masks hold only the scene classes', () => {
  const a = compositeScene(tiny, { size: 64, seed: 5 });
  const b = compositeScene(tiny, { size: 64, seed: 5 });
  const c = compositeScene(tiny, { size: 64, seed: 6 });
  assert.deepEqual(a.image.data, b.image.data);
  assert.deepEqual(a.mask.data, b.mask.data);
  assert.notDeepEqual(a.mask.data, c.mask.data, 'another seed, another scene');
  for (const v of a.mask.data) assert.ok(v >= 0 && v <= SCENE_CLASSES.length);
  assert.ok(
    a.mask.data.some((v) => v > 0),
    'at least one object',
  );
  // Object pixels carry the texture (bright), background pixels the photograph (dark), up to noise, shadow and shading.
  let objectMean = 0;
  let n = 0;
  a.mask.data.forEach((v, i) => {
    if (v > 0) {
      objectMean += a.image.data[i * 3];
      n++;
    }
  });
  assert.ok(objectMean / n > 100, `object pixels are textured: mean red ${objectMean / n}`);
});

test('object edges are anti-aliased in the image while the mask stays hard', () => {
  // Partially covered pixels have a colour between the background's (red 20) and the texture's (red ~200).
  const s = compositeScene({ ...tiny }, { size: 96, seed: 11, minObjects: 1, maxObjects: 1 });
  let mixed = 0;
  for (let i = 0; i < s.mask.data.length; i++) {
    const r = s.image.data[i * 3];
    if (r > 60 && r < 120) mixed++;
  }
  assert.ok(mixed > 0, 'edge pixels are blends of object and background');
  assert.ok(
    s.mask.data.every((v) => v === 0 || v === 1 || v === 2),
    'the mask has no blends',
  );
});

test('scenes from the real photographs (scripts/fetch-photos.sh): deterministic, every object kind appears', async () => {
  const photos = path.resolve(__dirname, '..', '..', '.cache', 'photos');
  assert.ok(
    fs.existsSync(path.join(photos, 'backgrounds')),
    `no photographs in ${photos}: run bash scripts/fetch-photos.sh (.ci/run does)`,
  );
  const library = await readSceneLibrary(photos);
  assert.ok(
    library.backgrounds.length >= 10 &&
      library.textures.animal.length >= 1 &&
      library.textures.stone.length >= 1 &&
      library.silhouettes.length >= 1,
  );
  const seen = new Set<number>();
  for (let seed = 0; seed < 6; seed++) {
    const a = compositeScene(library, { size: 96, seed });
    const b = compositeScene(library, { size: 96, seed });
    assert.deepEqual(a.image.data, b.image.data, `seed ${seed}: same image`);
    assert.deepEqual(a.mask.data, b.mask.data, `seed ${seed}: same mask`);
    a.mask.data.forEach((v) => seen.add(v));
  }
  assert.deepEqual([...seen].sort(), [0, 1, 2], 'background and both object kinds');
});
