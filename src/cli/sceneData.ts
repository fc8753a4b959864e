// The composite benchmark's data on disk: scenes made from the photographs fetched by scripts/fetch-photos.sh.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compositeScene, SCENE_CLASSES, type SceneLibrary } from '../masks/compositeScenes';
import { decodeImage, isImageFile } from '../masks/imageIO';
import { InputError } from '../masks/inputError';
import type { RgbImage } from '../masks/maskImage';
import { writeDataset } from './demo';

async function imagesIn(dir: string): Promise<RgbImage[]> {
  const names = (await fs.promises.readdir(dir).catch(() => {
    throw new InputError(dir, 'folder missing: the photograph library needs backgrounds/, textures/ and silhouettes/ (scripts/fetch-photos.sh makes one in .cache/photos)');
  })).filter(isImageFile).sort();
  if (names.length === 0) throw new InputError(dir, 'no images in this folder of the photograph library');
  return Promise.all(names.map((n) => decodeImage(path.join(dir, n))));
}

/** Reads a photograph library folder: backgrounds/, textures/, silhouettes/. */
export async function readSceneLibrary(photosDir: string): Promise<SceneLibrary> {
  const [backgrounds, textures, silhouettes] = await Promise.all(['backgrounds', 'textures', 'silhouettes'].map((d) => imagesIn(path.join(photosDir, d))));
  return { backgrounds, textures, silhouettes };
}

/** Writes `count` composite scenes of size x size (seeded) as images/, truth/ and classes.txt. */
export async function writeSceneData(dir: string, library: SceneLibrary, count: number, size: number, seed: number): Promise<{ images: string[]; truths: string[] }> {
  return writeDataset(dir, 'scene', SCENE_CLASSES, count, (i) => compositeScene(library, { size, seed: seed * 1000 + i }));
}
