// Frames of a camera panning over a generated scene, with exact masks: a sequence whose motion is known, for
// the propagation benchmark and tests.
import type { MaskImage, RgbImage } from '../masks/maskImage';
import { syntheticSample } from './syntheticShapes';

/**
 * `count` frames of a camera panning over a generated scene (`dx` px right and `dy` px down a frame), with
 * their masks: the scene is generated once, larger, and each frame is a window of it.
 */
export function panningFrames(
  width: number,
  height: number,
  classes: number,
  seed: number,
  count = 3,
  dx = 6,
  dy = 4,
): { image: RgbImage; mask: MaskImage }[] {
  const big = syntheticSample({
    width: width + (count - 1) * dx,
    height: height + (count - 1) * dy,
    numClasses: classes,
    seed,
  });
  const W = big.image.width;
  return Array.from({ length: count }, (_, k) => {
    const image = new Uint8Array(width * height * 3);
    const mask = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      const row = (y + k * dy) * W + k * dx;
      image.set(big.image.data.subarray(row * 3, (row + width) * 3), y * width * 3);
      mask.set(big.mask.data.subarray(row, row + width), y * width);
    }
    return { image: { width, height, data: image }, mask: { width, height, data: mask } };
  });
}
