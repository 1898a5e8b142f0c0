import { createRequire } from 'node:module';
import { DecodeError } from '../errors.js';
import type { Volume } from './pixels.js';
import { describeThrown, formatBytes } from './reasons.js';

/** The part of daikon's (untyped, CommonJS) image API this module uses. */
interface DaikonImage {
  getRows(): number | null;
  getCols(): number | null;
  getNumberOfFrames(): number;
  getNumberOfSamplesPerPixel(): number;
  getBitsAllocated(): number | null;
  getPhotometricInterpretation(): string | null;
  getPlanarConfig(): number | null;
  getModality(): string | null;
  hasPixelData(): boolean;
  isCompressed(): boolean;
  getPixelData(): { value?: { byteLength: number } } | undefined;
  /** Applies bits-stored masking, rescale slope/intercept and MONOCHROME1 inversion. */
  getInterpretedData(asArray: false, asObject: false, frameIndex: number): Float32Array;
}

interface Daikon {
  Series: { parseImage(data: DataView): DaikonImage | null; parserError: unknown };
}

// daikon is CommonJS and pulls its bundled codecs (JPEG baseline/lossless, JPEG 2000, JPEG-LS via
// CharLS, RLE, deflate) in with require(); Node loads them all at first use. CharLS is asm.js that
// V8 rejects as asm ("Invalid member of stdlib") and runs as plain JS, with a one-off warning.
const daikon = createRequire(import.meta.url)('daikon') as Daikon;

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
  let image: DaikonImage | null;
  try {
    daikon.Series.parserError = null;
    image = daikon.Series.parseImage(new DataView(own.buffer, 0, own.byteLength));
  } catch (thrown) {
    throw new DecodeError(`DICOM could not be parsed: ${describeThrown(thrown)}`, { cause: thrown });
  }
  if (image === null) {
    const cause = daikon.Series.parserError;
    throw new DecodeError(`DICOM could not be parsed: ${describeThrown(cause)}`, { cause });
  }
  return toVolume(image, maxPixelBytes);
}

function toVolume(image: DaikonImage, maxPixelBytes: number): Volume {
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
  const declared = width * height * frames * samples * (bits / 8);
  if (declared > maxPixelBytes) {
    throw new DecodeError(
      `DICOM pixel data would decode to ${formatBytes(declared)}, above the ${formatBytes(maxPixelBytes)} limit (maxFileBytes)`,
    );
  }
  const stored = image.getPixelData()?.value?.byteLength ?? 0;
  if (!image.isCompressed() && stored < declared) {
    throw new DecodeError(`DICOM pixel data is truncated (${stored} of ${declared} bytes)`);
  }
  // Only uncompressed YBR_FULL keeps Y in the first sample; the codecs hand back RGB.
  const lumaFromFirstSample = photometric.startsWith('YBR') && !image.isCompressed();
  const planar = image.getPlanarConfig() === 1;
  const modality = image.getModality()?.trim().toUpperCase();
  return {
    width,
    height,
    depth: frames,
    ...(modality ? { modality } : {}),
    slice(index) {
      let frame: Float32Array;
      try {
        frame = image.getInterpretedData(false, false, index);
      } catch (thrown) {
        throw new DecodeError(`DICOM pixel data could not be decoded: ${describeThrown(thrown)}`, {
          cause: thrown,
        });
      }
      if (frame.length < width * height * samples) {
        throw new DecodeError(
          `DICOM frame ${index} decoded to ${frame.length} values, not ${width * height * samples}`,
        );
      }
      return samples === 1
        ? frame.subarray(0, width * height)
        : toGray(frame, width * height, planar, lumaFromFirstSample);
    },
  };
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
