import { createRequire } from 'node:module';
import { DecodeError } from '../errors.js';
import type { Volume } from './pixels.js';
import { describeThrown, formatBytes } from './reasons.js';

/** The part of pngjs's synchronous API this module uses (its types are not installed). */
interface PngSync {
  read(
    buffer: Buffer,
    options: { skipRescale: boolean },
  ): { width: number; height: number; colorType: number; data: Uint8Array | Uint16Array };
}

const { PNG } = createRequire(import.meta.url)('pngjs') as { PNG: { sync: PngSync } };

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** PNG colour types whose first channel is already the gray value (gray, gray + alpha). */
const GRAY_COLOUR_TYPES = new Set([0, 4]);

/** True when the bytes start with the PNG signature. */
export function hasPngMagic(bytes: Uint8Array): boolean {
  return bytes.length >= SIGNATURE.length && SIGNATURE.every((byte, index) => bytes[index] === byte);
}

/**
 * Decodes a PNG into a single-slice {@link Volume} of gray values at the file's own bit depth
 * (16-bit PNGs keep their 16 bits). Colour is reduced to Rec. 601 luma; alpha is ignored.
 *
 * @param maxPixelBytes bound on the decoded RGBA buffer, checked from the header before inflating.
 * @throws DecodeError with the reason the file cannot be used.
 */
export function readPng(bytes: Uint8Array, maxPixelBytes: number): Volume {
  // IHDR is always the first chunk: width and height are big-endian at offsets 16 and 20.
  if (bytes.length < 33) throw new DecodeError('PNG is truncated before its header ends');
  const header = new DataView(bytes.buffer, bytes.byteOffset, 24);
  const declared = header.getUint32(16) * header.getUint32(20) * 4 * 2;
  if (declared > maxPixelBytes) {
    throw new DecodeError(
      `PNG would decode to ${formatBytes(declared)}, above the ${formatBytes(maxPixelBytes)} limit (maxFileBytes)`,
    );
  }
  let png: ReturnType<PngSync['read']>;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { skipRescale: true });
  } catch (thrown) {
    throw new DecodeError(`PNG could not be decoded: ${describeThrown(thrown)}`, { cause: thrown });
  }
  const { width, height, data } = png;
  const gray = new Float32Array(width * height);
  const firstChannelOnly = GRAY_COLOUR_TYPES.has(png.colorType);
  for (let i = 0; i < gray.length; i++) {
    const r = data[4 * i] ?? 0;
    gray[i] = firstChannelOnly
      ? r
      : 0.299 * r + 0.587 * (data[4 * i + 1] ?? 0) + 0.114 * (data[4 * i + 2] ?? 0);
  }
  return { width, height, depth: 1, slice: () => gray };
}
