// The pixel limit: guards against decompression bombs (a few KB of PNG that inflate to gigabytes) and against
// files that state absurd sizes (a COCO image of 100000x100000). Light on purpose: formats use it too.
import { InputError } from './inputError';

/** Default pixel limit. */
export const DEFAULT_MAX_PIXELS = 16384 * 16384;

/** What to do about the pixel limit, for messages. */
export const PIXEL_LIMIT_HINT =
  'if the file is trusted, raise the limit with the environment variable MASKLOOP_MAX_PIXELS (e.g. MASKLOOP_MAX_PIXELS=1000000000)';

/** The pixel limit in force: MASKLOOP_MAX_PIXELS when set to a positive whole number, else the default. */
export function maxPixels(): number {
  const v = Number(process.env.MASKLOOP_MAX_PIXELS);
  return Number.isInteger(v) && v > 0 ? v : DEFAULT_MAX_PIXELS;
}

/** Refuses a stated image size over the pixel limit before anything of that size is allocated. */
export function checkPixelCount(width: number, height: number, file: string): void {
  if (width * height > maxPixels())
    throw new InputError(
      file,
      `${width}x${height} = ${width * height} pixels is over the limit of ${maxPixels()}; ${PIXEL_LIMIT_HINT}`,
    );
}
