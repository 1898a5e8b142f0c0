/**
 * Sentences for DICOM files the bundled codecs cannot read. daikon and its codecs fail with
 * whatever their code happens to throw ("Offset is outside the bounds of the DataView", "Cannot
 * read properties of undefined"); a site admin needs to know where the file is damaged or which
 * feature the decoder lacks, and what to do about it. This module looks at the bytes itself to
 * say so.
 */
import { describeThrown } from './reasons.js';

/** What to do with a file a bundled codec cannot decode. */
export const CONVERT_HINT =
  're-export it from the PACS or convert it to an uncompressed transfer syntax (e.g. `gdcmconv --raw` or `dcmdjpeg`)';

/** Transfer syntaxes with compressed pixel data, by UID prefix, as a person names them. */
const CODEC_NAMES: [prefix: string, name: string][] = [
  ['1.2.840.10008.1.2.4.50', 'JPEG baseline'],
  ['1.2.840.10008.1.2.4.51', 'JPEG extended'],
  ['1.2.840.10008.1.2.4.57', 'JPEG lossless'],
  ['1.2.840.10008.1.2.4.70', 'JPEG lossless'],
  ['1.2.840.10008.1.2.4.80', 'JPEG-LS'],
  ['1.2.840.10008.1.2.4.81', 'JPEG-LS'],
  ['1.2.840.10008.1.2.4.90', 'JPEG 2000'],
  ['1.2.840.10008.1.2.4.91', 'JPEG 2000'],
  ['1.2.840.10008.1.2.5', 'RLE'],
];

/** The codec name of a transfer syntax UID, or the UID itself when it has none here. */
export function codecName(transferSyntax: string | null | undefined): string {
  const uid = (transferSyntax ?? '').replace(/\0/g, '').trim();
  return CODEC_NAMES.find(([prefix]) => uid === prefix)?.[1] ?? `transfer syntax ${uid || '(none)'}`;
}

/** `(gggg,eeee)` of a tag, as DICOM tools print it. */
export function tagName(group: number, element: number): string {
  const hex = (value: number) => value.toString(16).toUpperCase().padStart(4, '0');
  return `(${hex(group)},${hex(element)})`;
}

/**
 * The reason for a header the parser gave up on. `last` is the last element it read: the damage is
 * at or after the byte where it ends.
 */
export function damagedHeaderReason(
  fileLength: number,
  last: { group: number; element: number; offsetEnd: number } | undefined,
  thrown: unknown,
): string {
  if (last === undefined) {
    return 'DICOM could not be parsed: not even its first element is readable, so it is probably not a DICOM file';
  }
  const where = `at byte offset ${last.offsetEnd}, after element ${tagName(last.group, last.element)}`;
  // daikon reads past the end of its DataView (a RangeError) when an element is cut off.
  return thrown instanceof RangeError
    ? `DICOM could not be parsed: the file is damaged ${where}, where an element runs past the end of the ${fileLength}-byte file (a truncated copy?); copy the file again from its source`
    : `DICOM could not be parsed: the file is damaged ${where} (${describeThrown(thrown)}); ${CONVERT_HINT}`;
}

/** One fragment of encapsulated pixel data: where its bytes start in the file, and how many. */
export interface Fragment {
  offset: number;
  length: number;
}

/**
 * Walks encapsulated pixel data (PS3.5 A.4: items FFFE,E000 up to the delimiter FFFE,E0DD) from
 * the byte after the pixel data element's header.
 *
 * @returns the fragments (the basic offset table first), or the reason the walk failed, with the
 * byte offset of the damage.
 */
export function walkFragments(bytes: Uint8Array, start: number): Fragment[] | { reason: string } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fragments: Fragment[] = [];
  let offset = start;
  while (offset + 8 <= bytes.length) {
    const group = view.getUint16(offset, true);
    const element = view.getUint16(offset + 2, true);
    const length = view.getUint32(offset + 4, true);
    if (group === 0xfffe && element === 0xe0dd) return fragments;
    if (group !== 0xfffe || element !== 0xe000) {
      return {
        reason: `DICOM pixel data is damaged at byte offset ${offset}: expected a fragment item (FFFE,E000), found ${tagName(group, element)}; ${CONVERT_HINT}`,
      };
    }
    if (offset + 8 + length > bytes.length) {
      return {
        reason: `DICOM pixel data is truncated: the fragment at byte offset ${offset} declares ${length} bytes but the file ends ${bytes.length - offset - 8} bytes later; copy the file again from its source`,
      };
    }
    fragments.push({ offset: offset + 8, length });
    offset += 8 + length;
  }
  return {
    reason: `DICOM pixel data is truncated at byte offset ${offset}: the file ends before the end of its fragments; copy the file again from its source`,
  };
}

/**
 * JPEG 2000 features the bundled decoder (pdf.js's jpx, as daikon ships it) lacks, found in a
 * codestream's main header (SOC up to the first SOT). Undefined when none is found.
 */
export function unsupportedJpeg2000Feature(codestream: Uint8Array): string | undefined {
  let offset = codestream.indexOf(0xff);
  if (offset < 0 || codestream[offset + 1] !== 0x4f) return undefined; // no SOC: not a raw codestream
  offset += 2;
  let sawCod = false;
  while (offset + 4 <= codestream.length && codestream[offset] === 0xff) {
    const marker = codestream[offset + 1] ?? 0;
    if (marker === 0x90) break; // SOT: main header ends
    if (marker === 0x52) sawCod = true;
    const length = ((codestream[offset + 2] ?? 0) << 8) | (codestream[offset + 3] ?? 0);
    offset += 2 + length;
  }
  return sawCod ? undefined : 'coding style (COD) given only in tile-part headers';
}

/**
 * The reason for pixel data a bundled codec threw on. daikon decodes every frame at the first
 * request, so the failing frame is known only for single-frame files: `fragment` is then its bytes.
 */
export function codecFailureReason(
  codec: string,
  fragment: Fragment | undefined,
  feature: string | undefined,
  thrown: unknown,
): string {
  const what = `DICOM ${codec} pixel data${fragment === undefined ? '' : ` (at byte offset ${fragment.offset})`}`;
  if (feature !== undefined) {
    return `${what} uses a codec feature the bundled decoder does not support: ${feature}; ${CONVERT_HINT}`;
  }
  // A TypeError or RangeError is the decoder tripping over bytes it did not expect, not a message
  // written for anyone: say that the data is damaged or unusual rather than quote it.
  const detail =
    thrown instanceof TypeError || thrown instanceof RangeError
      ? 'is damaged or uses a codec feature the bundled decoder does not support'
      : `could not be decoded (the decoder reports: ${describeThrown(thrown)})`;
  return `${what} ${detail}; ${CONVERT_HINT}`;
}
