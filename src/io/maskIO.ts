import * as fs from 'node:fs';
import { decode, encode } from 'fast-png';
import { writeFileAtomic } from './atomicWrite';
import { InputError } from '../masks/inputError';
import type { MaskImage } from '../masks/maskImage';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Decodes a mask PNG to class indices. Grey 8-bit: the value is the class. Palette PNGs (Pascal VOC,
 * labelme): the palette index is the class, never the colour. 16-bit grey is accepted when every
 * value fits in 8 bits. Colour PNGs are accepted only when every pixel is grey (R = G = B).
 */
export function decodeMaskPng(bytes: Uint8Array, file: string): MaskImage {
  if (bytes.length < 8 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) {
    throw new InputError(file, 'a mask must be a PNG file (single-channel class indices)');
  }
  let png: ReturnType<typeof decode>;
  try {
    png = decode(bytes);
  } catch (err) {
    throw new InputError(file, `the mask PNG is corrupt (${err instanceof Error ? err.message : String(err)})`);
  }
  const { width, height, channels, depth } = png;
  const n = width * height;
  const out = new Uint8Array(n);
  if (png.palette) {
    if (depth === 8) out.set(png.data.subarray(0, n));
    else unpackBits(png.data as Uint8Array, width, height, depth, out);
    return { width, height, data: out };
  }
  if (channels === 1 || channels === 2) {
    const src = png.data;
    if (depth < 8) {
      unpackBits(src as Uint8Array, width, height, depth, out);
      return { width, height, data: out };
    }
    for (let i = 0; i < n; i++) {
      const v = src[i * channels];
      if (v > 255)
        throw new InputError(
          file,
          `pixel ${i % width},${Math.floor(i / width)} has class ${v}; mask classes must be 0-255`,
        );
      out[i] = v;
    }
    return { width, height, data: out };
  }
  const src = png.data;
  for (let i = 0; i < n; i++) {
    const r = src[i * channels];
    if (src[i * channels + 1] !== r || src[i * channels + 2] !== r || r > 255) {
      throw new InputError(
        file,
        `the mask is a colour PNG (pixel ${i % width},${Math.floor(i / width)} is not grey); save masks as single-channel class-index PNGs or palette PNGs`,
      );
    }
    out[i] = r;
  }
  return { width, height, data: out };
}

function unpackBits(src: Uint8Array, width: number, height: number, depth: number, out: Uint8Array): void {
  const rowBytes = Math.ceil((width * depth) / 8);
  const perByte = 8 / depth;
  const maskBits = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const byte = src[y * rowBytes + Math.floor(x / perByte)];
      const shift = 8 - depth * ((x % perByte) + 1);
      out[y * width + x] = (byte >> shift) & maskBits;
    }
  }
}

export async function readMask(file: string): Promise<MaskImage> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (err) {
    throw new InputError(file, `cannot read the mask (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return decodeMaskPng(bytes, file);
}

/** Encodes a mask as a single-channel 8-bit PNG: pixel value = class index; `text` goes in tEXt chunks. */
export function encodeMaskPng(mask: MaskImage, text?: Record<string, string>): Uint8Array {
  if (mask.data.length !== mask.width * mask.height)
    throw new Error(`mask data has ${mask.data.length} bytes for ${mask.width}x${mask.height}`);
  return encode({
    width: mask.width,
    height: mask.height,
    data: mask.data,
    channels: 1,
    depth: 8,
    ...(text ? { text } : {}),
  });
}

/** Writes a mask PNG atomically: what was on disk stays intact until the new file is complete. */
export async function writeMask(file: string, mask: MaskImage, text?: Record<string, string>): Promise<void> {
  await writeFileAtomic(file, encodeMaskPng(mask, text));
}

/** The tEXt chunks of a PNG (empty when it has none or is not a PNG). */
export function pngText(bytes: Uint8Array): Record<string, string> {
  try {
    return decode(bytes).text ?? {};
  } catch {
    return {};
  }
}

/** The tEXt key under which a suggestion file records the model version that made it. */
export const MODEL_VERSION_KEY = 'maskloop:modelVersion';
/** The tEXt key under which a suggestion file records the neighbouring frame it follows (its file name). */
export const FOLLOWS_KEY = 'maskloop:follows';

/** Width and height from a PNG's IHDR chunk, without decoding it; null when the bytes are not a PNG. */
export function pngSize(head: Uint8Array): { width: number; height: number } | null {
  if (
    head.length < 24 ||
    PNG_SIGNATURE.some((b, i) => head[i] !== b) ||
    String.fromCharCode(...head.subarray(12, 16)) !== 'IHDR'
  )
    return null;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** pngSize of a file, reading only its first 24 bytes. */
export async function readPngSize(file: string): Promise<{ width: number; height: number } | null> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const head = new Uint8Array(24);
    const { bytesRead } = await fh.read(head, 0, 24, 0);
    return pngSize(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}
