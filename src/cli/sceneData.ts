// The composite benchmark's data on disk: scenes made from the photographs fetched by scripts/fetch-photos.sh.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compositeScene, SCENE_CLASSES, type SceneLibrary } from '../synthetic/compositeScenes';
import { decodeImage, isImageFile } from '../io/imageIO';
import { InputError } from '../masks/inputError';
import type { RgbImage } from '../masks/maskImage';
import { writeDataset } from './demo';

async function imagesIn(dir: string): Promise<RgbImage[]> {
  const names = (
    await fs.promises.readdir(dir).catch(() => {
      throw new InputError(
        dir,
        `folder missing: the photograph library needs backgrounds/, textures/{${SCENE_CLASSES.join(',')}}/ and silhouettes/ (scripts/fetch-photos.sh makes one in .cache/photos)`,
      );
    })
  )
    .filter(isImageFile)
    .sort();
  if (names.length === 0) throw new InputError(dir, 'no images in this folder of the photograph library');
  return Promise.all(names.map((n) => decodeImage(path.join(dir, n))));
}

/** Reads a photograph library folder: backgrounds/, textures/<kind>/ for each kind, silhouettes/. */
export async function readSceneLibrary(photosDir: string): Promise<SceneLibrary> {
  const [backgrounds, silhouettes, ...perKind] = await Promise.all([
    imagesIn(path.join(photosDir, 'backgrounds')),
    imagesIn(path.join(photosDir, 'silhouettes')),
    ...SCENE_CLASSES.map((k) => imagesIn(path.join(photosDir, 'textures', k))),
  ]);
  const textures = Object.fromEntries(SCENE_CLASSES.map((k, i) => [k, perKind[i]])) as SceneLibrary['textures'];
  return { backgrounds, textures, silhouettes };
}

/** Writes `count` composite scenes of size x size (seeded) as images/, truth/ and classes.txt. */
export async function writeSceneData(
  dir: string,
  library: SceneLibrary,
  count: number,
  size: number,
  seed: number,
): Promise<{ images: string[]; truths: string[] }> {
  return writeDataset(dir, 'scene', SCENE_CLASSES, count, (i) =>
    compositeScene(library, { size, seed: seed * 1000 + i }),
  );
}
