import { gunzipSync } from 'node:zlib';
import * as nifti from 'nifti-reader-js';
import { DecodeError } from '../errors.js';
import type { Volume } from './pixels.js';
import { describeThrown, formatBytes } from './reasons.js';

type Reader = (view: DataView, offset: number, littleEndian: boolean) => number;

/** NIfTI datatype code -> bytes per voxel and a reader; other types (RGB, complex, 64-bit) are refused. */
const DATATYPES: ReadonlyMap<number, { bytes: number; read: Reader }> = new Map([
  [nifti.NIFTI1.TYPE_UINT8, { bytes: 1, read: (v, o) => v.getUint8(o) }],
  [nifti.NIFTI1.TYPE_INT8, { bytes: 1, read: (v, o) => v.getInt8(o) }],
  [nifti.NIFTI1.TYPE_INT16, { bytes: 2, read: (v, o, le) => v.getInt16(o, le) }],
  [nifti.NIFTI1.TYPE_UINT16, { bytes: 2, read: (v, o, le) => v.getUint16(o, le) }],
  [nifti.NIFTI1.TYPE_INT32, { bytes: 4, read: (v, o, le) => v.getInt32(o, le) }],
  [nifti.NIFTI1.TYPE_UINT32, { bytes: 4, read: (v, o, le) => v.getUint32(o, le) }],
  [nifti.NIFTI1.TYPE_FLOAT32, { bytes: 4, read: (v, o, le) => v.getFloat32(o, le) }],
  [nifti.NIFTI1.TYPE_FLOAT64, { bytes: 8, read: (v, o, le) => v.getFloat64(o, le) }],
]);

/** True when the bytes start with the gzip magic number. */
export function hasGzipMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Which NIfTI header the (uncompressed) bytes start with: `single` for a `.nii` file (magic "n+1" at
 * 344 or "n+2" at 4), `pair` for the header half of an `.hdr`/`.img` pair ("ni1"/"ni2").
 */
export function niftiKind(bytes: Uint8Array): 'single' | 'pair' | undefined {
  const magicAt = (offset: number) => String.fromCharCode(...bytes.subarray(offset, offset + 4));
  if (bytes.length >= 348) {
    const v1 = magicAt(344);
    if (v1 === 'n+1\0') return 'single';
    if (v1 === 'ni1\0') return 'pair';
  }
  if (bytes.length >= 540) {
    const v2 = magicAt(4);
    if (v2 === 'n+2\0') return 'single';
    if (v2 === 'ni2\0') return 'pair';
  }
  return undefined;
}

/**
 * Inflates a gzip file with the output capped at `maxBytes`, so a small `.nii.gz` cannot expand
 * into an unbounded allocation.
 *
 * @throws DecodeError when the stream is corrupt or inflates past the bound.
 */
export function gunzipBounded(bytes: Uint8Array, maxBytes: number): Uint8Array {
  try {
    return gunzipSync(bytes, { maxOutputLength: maxBytes });
  } catch (thrown) {
    if (thrown instanceof RangeError) {
      throw new DecodeError(`gzip data inflates to more than ${formatBytes(maxBytes)} (maxFileBytes)`, {
        cause: thrown,
      });
    }
    throw new DecodeError(`gzip data is corrupt or truncated: ${describeThrown(thrown)}`, { cause: thrown });
  }
}

/**
 * Reads an uncompressed NIfTI-1/2 file into a {@link Volume} of slices along the last spatial axis
 * (k of i,j,k). For 4D and higher files only the first volume (t = 0) is read. Intensities have
 * scl_slope/scl_inter applied; NaN and infinities are left for the caller to replace.
 *
 * @param maxPixelBytes bound on the first volume's voxel data, checked before reading it.
 * @throws DecodeError with the reason the file cannot be used.
 */
export function readNifti(bytes: Uint8Array, maxPixelBytes: number): Volume {
  const buffer = toArrayBuffer(bytes);
  let header: nifti.NIFTI1 | nifti.NIFTI2;
  try {
    header = nifti.readHeader(buffer);
  } catch (thrown) {
    throw new DecodeError(`NIfTI header could not be read: ${describeThrown(thrown)}`, { cause: thrown });
  }
  const type = DATATYPES.get(header.datatypeCode);
  if (type === undefined) {
    throw new DecodeError(
      `NIfTI datatype code ${header.datatypeCode} is not supported (integer or float voxels only)`,
    );
  }
  const rank = header.dims[0] ?? 0;
  const width = header.dims[1] ?? 0;
  const height = rank >= 2 ? (header.dims[2] ?? 0) : 1;
  const depth = rank >= 3 ? (header.dims[3] ?? 0) : 1;
  if (!(rank >= 1 && rank <= 7 && width > 0 && height > 0 && depth > 0)) {
    throw new DecodeError(`NIfTI declares invalid dimensions [${header.dims.join(', ')}]`);
  }
  const sliceVoxels = width * height;
  const declared = sliceVoxels * depth * type.bytes;
  if (declared > maxPixelBytes) {
    throw new DecodeError(
      `NIfTI volume would decode to ${formatBytes(declared)}, above the ${formatBytes(maxPixelBytes)} limit (maxFileBytes)`,
    );
  }
  const offset = Math.max(0, Math.floor(header.vox_offset));
  if (offset + declared > buffer.byteLength) {
    throw new DecodeError(
      `NIfTI voxel data is truncated (${Math.max(0, buffer.byteLength - offset)} of ${declared} bytes)`,
    );
  }
  // scl_slope 0 means "no scaling" in the NIfTI standard.
  const slope = Number.isFinite(header.scl_slope) && header.scl_slope !== 0 ? header.scl_slope : 1;
  const intercept = Number.isFinite(header.scl_inter) ? header.scl_inter : 0;
  const view = new DataView(buffer, offset, declared);
  return {
    width,
    height,
    depth,
    slice(index) {
      const pixels = new Float32Array(sliceVoxels);
      const base = index * sliceVoxels * type.bytes;
      for (let i = 0; i < sliceVoxels; i++) {
        pixels[i] = type.read(view, base + i * type.bytes, header.littleEndian) * slope + intercept;
      }
      return pixels;
    },
  };
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength &&
    bytes.buffer instanceof ArrayBuffer
  ) {
    return bytes.buffer;
  }
  // A copy, so the reader cannot see past the view; `new Uint8Array(view)` copies, Buffer#slice would not.
  return new Uint8Array(bytes).buffer;
}
