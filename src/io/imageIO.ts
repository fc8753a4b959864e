import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { maxPixels, PIXEL_LIMIT_HINT } from '../masks/pixelLimit';
import { InputError } from '../masks/inputError';
import type { RgbImage } from '../masks/maskImage';

/** Image files maskloop labels. */
export { DEFAULT_MAX_PIXELS, maxPixels } from '../masks/pixelLimit';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.gif'];

export function isImageFile(file: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(file).toLowerCase());
}

export interface DecodeOptions {
  maxPixels?: number;
}

/**
 * Decodes PNG, JPEG, WebP, TIFF (8 or 16 bit) or GIF (first frame) to 8-bit RGB. Grey and RGBA are
 * normalised to RGB, EXIF orientation is applied, and images over the pixel limit are refused
 * before their pixels are decoded.
 */
export async function decodeImage(file: string, options: DecodeOptions = {}): Promise<RgbImage> {
  const limit = options.maxPixels ?? maxPixels();
  let input: Buffer;
  try {
    input = await fs.promises.readFile(file);
  } catch (err) {
    throw new InputError(file, `cannot read the image (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let meta: sharp.Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new InputError(file, `not a readable image (${firstLine(err)}); supported: PNG, JPEG, WebP, TIFF, GIF`);
  }
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (!w || !h) throw new InputError(file, 'the image has no size; the file may be truncated');
  if (w * h > limit)
    throw new InputError(file, `${w}x${h} = ${w * h} pixels is over the limit of ${limit}; ${PIXEL_LIMIT_HINT}`);
  try {
    const { data, info } = await sharp(input, { limitInputPixels: limit, pages: 1, page: 0 })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return {
      width: info.width,
      height: info.height,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    };
  } catch (err) {
    throw new InputError(file, `the image could not be decoded (${firstLine(err)})`);
  }
}

/** Encodes an RGB image as PNG (for generated samples and previews). */
export async function encodeRgbPng(image: RgbImage): Promise<Buffer> {
  return sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 3 },
  })
    .png()
    .toBuffer();
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}

/** Width and height as decodeImage returns them (EXIF orientation applied), without decoding pixels. */
export async function imageSize(file: string): Promise<{ width: number; height: number }> {
  let meta: sharp.Metadata;
  try {
    meta = await sharp(file, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new InputError(file, `not a readable image (${firstLine(err)})`);
  }
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (!w || !h) throw new InputError(file, 'the image has no size; the file may be truncated');
  return (meta.orientation ?? 1) >= 5 ? { width: h, height: w } : { width: w, height: h };
}

/** An image re-encoded as JPEG (quality 95), EXIF orientation applied; `target` only names it in errors. */
export async function jpegBytes(source: string, target: string): Promise<Buffer> {
  try {
    return await sharp(source).rotate().removeAlpha().jpeg({ quality: 95 }).toBuffer();
  } catch (err) {
    throw new InputError(source, `cannot convert to JPEG for ${target} (${firstLine(err)})`);
  }
}
