import { createRequire } from 'node:module';
import { DecodeError } from '../errors.js';
import {
  CONVERT_HINT,
  codecFailureReason,
  codecName,
  damagedHeaderReason,
  type Fragment,
  unsupportedJpeg2000Feature,
  walkFragments,
} from './dicom-reasons.js';
import type { Volume } from './pixels.js';
import { formatBytes } from './reasons.js';

/** A parsed element, as daikon keeps it. */
interface DaikonTag {
  group: number;
  element: number;
  /** Where the element's value starts in the (inflated, for deflate) data set bytes. */
  offsetValue: number;
  offsetEnd: number;
  value?: { byteLength: number } | null;
}

/** The part of daikon's (untyped, CommonJS) image API this module uses. */
interface DaikonImage {
  tags: Record<string, DaikonTag>;
  inflated?: ArrayBuffer;
  getRows(): number | null;
  getCols(): number | null;
  getNumberOfFrames(): number;
  getNumberOfSamplesPerPixel(): number;
  getBitsAllocated(): number | null;
  getPhotometricInterpretation(): string | null;
  getPlanarConfig(): number | null;
  getModality(): string | null;
  getTransferSyntax(): string | null;
  hasPixelData(): boolean;
  isCompressed(): boolean;
  isCompressedRLE(): boolean;
  getPixelData(): DaikonTag | undefined;
  /** Applies bits-stored masking, rescale slope/intercept and MONOCHROME1 inversion. */
  getInterpretedData(asArray: false, asObject: false, frameIndex: number): Float32Array;
}

interface DaikonParser {
  parse(data: DataView): DaikonImage | null;
  hasError(): boolean;
  error: unknown;
  inflated: ArrayBuffer | null;
}

interface Daikon {
  Parser: { new (): DaikonParser; VRS: string[]; DATA_VRS: string[] };
}

// daikon is CommonJS and pulls its bundled codecs (JPEG baseline/lossless, JPEG 2000, JPEG-LS via
// CharLS, RLE, deflate) in with require(); Node loads them all at first use. CharLS is asm.js that
// V8 rejects as asm ("Invalid member of stdlib") and runs as plain JS, with a one-off warning.
const daikon = createRequire(import.meta.url)('daikon') as Daikon;

// daikon's explicit-VR tables predate the value representations PS3.5 added with a 32-bit length
// (UR, OD, OL, OV, SV, UV). It reads their length as 16 bits, loses its place, and skips the rest
// of the data set, pixel data included: a JPEG secondary capture carrying a Retrieve URL (UR) was
// reported as having no pixel data. Registering them makes daikon read them as it reads UT.
for (const vr of ['UR', 'OD', 'OL', 'OV', 'SV', 'UV']) {
  if (!daikon.Parser.VRS.includes(vr)) daikon.Parser.VRS.push(vr);
  if (!daikon.Parser.DATA_VRS.includes(vr)) daikon.Parser.DATA_VRS.push(vr);
}

/** Photometric interpretations read as grayscale, or converted to it by luma. */
const GRAY = new Set(['MONOCHROME1', 'MONOCHROME2']);
const COLOUR = new Set(['RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_ICT', 'YBR_RCT']);

/** True when the bytes carry the DICOM Part 10 preamble marker ("DICM" at offset 128). */
export function hasDicomMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && String.fromCharCode(...bytes.subarray(128, 132)) === 'DICM';
}

/**
 * Parses a DICOM file into a {@link Volume}: one slice per frame, intensities in modality units
 * (rescale applied), MONOCHROME1 inverted so that brighter always means more signal, colour reduced
 * to luma. Decoding of compressed pixel data happens on the first `slice()` call.
 *
 * @param maxPixelBytes bound on the decoded pixel data the header declares, checked before decoding.
 * @throws DecodeError with the reason the file cannot be used.
 */
export function readDicom(bytes: Uint8Array, maxPixelBytes: number): Volume {
  // daikon reads through the DataView's underlying buffer from offset 0, so it must own an
  // exactly-sized buffer; a view into a larger one (a pooled Buffer, a truncated subarray) would be
  // read past its end. `new Uint8Array(view)` copies; Buffer#slice would not.
  const own =
    bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes);
  const parser = new daikon.Parser();
  let image: DaikonImage | null;
  try {
    image = parser.parse(new DataView(own.buffer, 0, own.byteLength));
  } catch (thrown) {
    image = null;
    parser.error = thrown;
  }
  if (image === null || parser.hasError()) {
    const last = Object.values(image?.tags ?? {}).reduce<DaikonTag | undefined>(
      (latest, tag) => (latest === undefined || tag.offsetEnd > latest.offsetEnd ? tag : latest),
      undefined,
    );
    throw new DecodeError(damagedHeaderReason(own.byteLength, last, parser.error), { cause: parser.error });
  }
  if (parser.inflated) image.inflated = parser.inflated;
  return toVolume(image, own, maxPixelBytes);
}

function toVolume(image: DaikonImage, bytes: Uint8Array, maxPixelBytes: number): Volume {
  if (!image.hasPixelData()) {
    throw new DecodeError('DICOM has no pixel data (e.g. a DICOMDIR, report or presentation state)');
  }
  const width = image.getCols() ?? 0;
  const height = image.getRows() ?? 0;
  const frames = image.getNumberOfFrames();
  const samples = image.getNumberOfSamplesPerPixel();
  const bits = image.getBitsAllocated() ?? 0;
  const photometric = (image.getPhotometricInterpretation() ?? 'MONOCHROME2').trim().toUpperCase();
  if (!(width > 0 && height > 0 && Number.isInteger(frames) && frames > 0)) {
    throw new DecodeError(`DICOM declares an invalid image size (${width}x${height}, ${frames} frames)`);
  }
  if (bits !== 8 && bits !== 16) {
    throw new DecodeError(`DICOM with ${bits} bits allocated is not supported (8 or 16 only)`);
  }
  const colour = COLOUR.has(photometric);
  if (!GRAY.has(photometric) && !colour) {
    throw new DecodeError(`DICOM photometric interpretation ${photometric} is not supported`);
  }
  if (samples !== (colour ? 3 : 1)) {
    throw new DecodeError(`DICOM ${photometric} with ${samples} samples per pixel is not supported`);
  }
  const compressed = image.isCompressed();
  // Uncompressed YBR_FULL_422 stores two luma samples and one Cb, Cr pair per two pixels of a row
  // (PS3.3 C.7.6.3.1.2): two bytes a pixel, not three. Codecs decode 4:2:2 to full RGB instead.
  const subsampled = photometric === 'YBR_FULL_422' && !compressed;
  if (subsampled && (bits !== 8 || width % 2 !== 0)) {
    throw new DecodeError(
      `DICOM YBR_FULL_422 needs 8 bits allocated and an even number of columns (has ${bits} bits, ${width} columns)`,
    );
  }
  const valuesPerFrame = width * height * (subsampled ? 2 : samples);
  const declared = valuesPerFrame * frames * (bits / 8);
  if (declared > maxPixelBytes) {
    throw new DecodeError(
      `DICOM pixel data would decode to ${formatBytes(declared)}, above the ${formatBytes(maxPixelBytes)} limit (maxFileBytes)`,
    );
  }
  const pixelData = image.getPixelData();
  const stored = pixelData?.value?.byteLength ?? 0;
  if (!compressed && stored < declared) {
    throw new DecodeError(`DICOM pixel data is truncated (${stored} of ${declared} bytes)`);
  }
  const codec = codecName(image.getTransferSyntax());
  const dataSet = image.inflated ? new Uint8Array(image.inflated) : bytes;
  let fragments: Fragment[] = [];
  if (compressed && pixelData !== undefined) {
    const walked = walkFragments(dataSet, pixelData.offsetValue);
    if (!Array.isArray(walked)) throw new DecodeError(walked.reason);
    // The first item is the basic offset table; with one fragment per frame the rest map to frames.
    fragments = walked.length === frames + 1 ? walked.slice(1) : [];
  }
  // Uncompressed and RLE (lossless, no colour transform) YBR keep luma in the first sample; the
  // JPEG codecs hand back RGB.
  const lumaFromFirstSample = photometric.startsWith('YBR') && (!compressed || image.isCompressedRLE());
  const planar = image.getPlanarConfig() === 1;
  const modality = image.getModality()?.trim().toUpperCase();
  const decodeFrame = (index: number): Float32Array => {
    try {
      return image.getInterpretedData(false, false, index);
    } catch (thrown) {
      const feature =
        codec === 'JPEG 2000'
          ? fragments
              .map((f) => unsupportedJpeg2000Feature(dataSet.subarray(f.offset, f.offset + f.length)))
              .find((found) => found !== undefined)
          : undefined;
      const fragment = frames === 1 ? fragments[0] : undefined;
      throw new DecodeError(codecFailureReason(codec, fragment, feature, thrown), { cause: thrown });
    }
  };
  return {
    width,
    height,
    depth: frames,
    ...(modality ? { modality } : {}),
    slice(index) {
      const frame = decodeFrame(index);
      if (frame.length < valuesPerFrame) {
        throw new DecodeError(
          `DICOM ${compressed ? codec : 'uncompressed'} frame ${index} decoded to ${frame.length} values, but its header declares ${width}x${height} with ${samples} samples; ${CONVERT_HINT}`,
        );
      }
      if (subsampled) return lumaOf422(frame, width * height);
      return samples === 1
        ? frame.subarray(0, width * height)
        : toGray(frame, width * height, planar, lumaFromFirstSample);
    },
  };
}

/** The luma plane of a YBR_FULL_422 frame: Y0 Y1 Cb Cr for each pair of pixels. */
function lumaOf422(frame: Float32Array, pixels: number): Float32Array {
  const luma = new Float32Array(pixels);
  for (let i = 0; i < pixels; i++) luma[i] = frame[4 * (i >> 1) + (i & 1)] ?? 0;
  return luma;
}

/** Rec. 601 luma of a three-sample frame, interleaved (planar 0) or one plane per sample (planar 1). */
function toGray(
  frame: Float32Array,
  pixels: number,
  planar: boolean,
  firstSampleOnly: boolean,
): Float32Array {
  const gray = new Float32Array(pixels);
  for (let i = 0; i < pixels; i++) {
    const [r, g, b] = planar
      ? [frame[i] ?? 0, frame[pixels + i] ?? 0, frame[2 * pixels + i] ?? 0]
      : [frame[3 * i] ?? 0, frame[3 * i + 1] ?? 0, frame[3 * i + 2] ?? 0];
    gray[i] = firstSampleOnly ? r : 0.299 * r + 0.587 * g + 0.114 * b;
  }
  return gray;
}
