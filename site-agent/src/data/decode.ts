import { extname } from 'node:path';
import { DecodeError } from '../errors.js';
import { hasDicomMagic, readDicom } from './dicom.js';
import { gunzipBounded, hasGzipMagic, niftiKind, readNifti } from './nifti.js';
import {
  centreOutOrder,
  hasContent,
  replaceNonFinite,
  resizeArea,
  standardise,
  type Volume,
} from './pixels.js';
import { hasPngMagic, readPng } from './png.js';

/** Container formats the agent ingests. */
export type ImageFormat = 'dicom' | 'nifti' | 'png';

/** Modality recorded for images whose file carries none (PNG, NIfTI, DICOM without 0008,0060). */
export const UNKNOWN_MODALITY = 'unknown';

/** Extensions under which a DICOM without the Part 10 preamble is still tried. */
const DICOM_EXTENSIONS = new Set(['.dcm', '.dicom', '.ima']);

export interface DecodeOptions {
  /** Side of the square output images, in pixels. */
  imageSize: number;
  /** Most slices or frames taken from one file, nearest its centre first. */
  maxSlicesPerFile: number;
  /** Bound on the decoded pixel data (and on gzip output) of one file, in bytes. */
  maxDecodedBytes: number;
  /**
   * Standardise each image to zero mean and unit variance (default true). False keeps the file's
   * intensity units (after rescale), for standardisation across the site's images instead.
   */
  standardise?: boolean;
}

/** The training images one file yields. */
export interface DecodedFile {
  format: ImageFormat;
  modality: string;
  /** Each `imageSize * imageSize`, standardised to zero mean and unit variance unless asked not to. */
  images: Float32Array[];
}

/**
 * Decodes one file's bytes into standardised training images. Pure and synchronous: it touches
 * no file system and keeps no state, so the same call can run unchanged in a worker thread (the
 * way to make `decodeTimeoutMs` preemptive; bytes in, a few small Float32Arrays out).
 *
 * Slice choice: of the slices with content ({@link hasContent}), the `maxSlicesPerFile` nearest the
 * stack's centre, returned in stack order. This applies alike to multi-frame DICOM and to NIfTI,
 * so a long cine or volume cannot outweigh single images in the site's sample count.
 *
 * @throws DecodeError with the reason the file yields no images.
 */
export function decodeFile(bytes: Uint8Array, path: string, options: DecodeOptions): DecodedFile {
  const { format, volume } = openVolume(bytes, path, options.maxDecodedBytes);
  const chosen: { index: number; image: Float32Array }[] = [];
  for (const index of centreOutOrder(volume.depth)) {
    if (chosen.length >= options.maxSlicesPerFile) break;
    const slice = replaceNonFinite(Float32Array.from(volume.slice(index)));
    const image = resizeArea(slice, volume.width, volume.height, options.imageSize, options.imageSize);
    if (hasContent(image))
      chosen.push({ index, image: options.standardise === false ? image : standardise(image) });
  }
  if (chosen.length === 0) {
    throw new DecodeError(
      volume.depth === 1
        ? 'image has no content (blank or constant)'
        : `none of ${volume.depth} slices has content`,
    );
  }
  chosen.sort((a, b) => a.index - b.index);
  return {
    format,
    modality: volume.modality ?? UNKNOWN_MODALITY,
    images: chosen.map((entry) => entry.image),
  };
}

function openVolume(
  bytes: Uint8Array,
  path: string,
  maxDecodedBytes: number,
): { format: ImageFormat; volume: Volume } {
  if (bytes.length === 0) throw new DecodeError('file is empty');
  if (hasPngMagic(bytes)) return { format: 'png', volume: readPng(bytes, maxDecodedBytes) };
  if (hasDicomMagic(bytes)) return { format: 'dicom', volume: readDicom(bytes, maxDecodedBytes) };
  const inflated = hasGzipMagic(bytes) ? gunzipBounded(bytes, maxDecodedBytes) : bytes;
  const nifti = niftiKind(inflated);
  if (nifti === 'single') return { format: 'nifti', volume: readNifti(inflated, maxDecodedBytes) };
  if (nifti === 'pair') {
    throw new DecodeError('NIfTI .hdr/.img pairs are not supported; convert the pair to a single .nii file');
  }
  if (inflated !== bytes) throw new DecodeError('gzip file that is not a NIfTI volume');
  if (DICOM_EXTENSIONS.has(extname(path).toLowerCase())) {
    return { format: 'dicom', volume: readDicom(bytes, maxDecodedBytes) };
  }
  throw new DecodeError('not a DICOM, NIfTI or PNG file');
}
