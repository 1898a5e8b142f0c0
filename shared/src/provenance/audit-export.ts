/**
 * The audit export: one self-contained file from which an auditor re-checks a federation offline.
 * It is JSON Lines (one record a line) so that both writing and verifying stream with memory bounded
 * by one update, however many rounds it holds:
 *
 *   header   format, version, the federation, the coordinator's ledger key, the CA certificate
 *   site*    each site's certificate and signing key, as the coordinator reports them
 *   entry*   every ledger entry in index order, byte-exact
 *   blob*    for each update accepted into a sealed round, in ledger order: its bytes (base64), or
 *            `absent` with the coordinator's reason when it no longer holds them (retention)
 *   end      counts, so a truncated file is detected
 *
 * Nothing in an export is trusted by the verifier that it does not re-check: certificates and keys are
 * cross-checked against the signed ledger, and blobs against the digests the sites signed.
 */
import { open } from 'node:fs/promises';
import { z } from 'zod';
import { AuditExportFormatError } from '../errors.js';

export const AUDIT_EXPORT_FORMAT = 'radfed-audit-export';
export const AUDIT_EXPORT_VERSION = 1;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'a lower-case hex SHA-256');

const headerSchema = z.object({
  type: z.literal('header'),
  format: z.literal(AUDIT_EXPORT_FORMAT),
  version: z.literal(AUDIT_EXPORT_VERSION),
  exportedAt: z.string(),
  federationId: z.string().min(1),
  federationName: z.string(),
  /** The coordinator's Ed25519 ledger key, raw 32 bytes base64. */
  coordinatorSigningKey: z.string().min(1),
  caCertificatePem: z.string(),
  /** The ledger head the coordinator reported when the export began. */
  head: z.object({ index: z.number().int().min(-1), digest: z.string() }),
});

const siteSchema = z.object({
  type: z.literal('site'),
  siteId: z.string().min(1),
  certificatePem: z.string(),
  /** Raw Ed25519 key, base64. */
  signingPublicKey: z.string(),
  revoked: z.boolean(),
});

const entrySchema = z.object({
  type: z.literal('entry'),
  index: z.number().int().min(0),
  kind: z.string().min(1),
  payload: z.string(),
  previousDigest: z.string(),
  digest: z.string(),
  signature: z.string(),
  createdAt: z.string(),
});

const blobSchema = z.object({
  type: z.literal('blob'),
  /** What the blob is: an accepted update, or the HE public parameters of a key bundle. */
  role: z.enum(['update', 'he-public-parameters']),
  /** The ledger entry that records the blob's digest. */
  entryIndex: z.number().int().min(0),
  digest: hex64,
  data: z.string().optional(),
  absent: z.string().optional(),
});

const endSchema = z.object({
  type: z.literal('end'),
  entries: z.number().int().min(0),
  blobs: z.number().int().min(0),
});

export type ExportHeader = z.infer<typeof headerSchema>;
export type ExportSite = z.infer<typeof siteSchema>;
export type ExportEntry = z.infer<typeof entrySchema>;
export type ExportBlob = z.infer<typeof blobSchema>;
export type ExportEnd = z.infer<typeof endSchema>;
export type ExportRecord = ExportHeader | ExportSite | ExportEntry | ExportBlob | ExportEnd;

/** Options of {@link readAuditExport}. */
export interface ReadAuditExportOptions {
  /**
   * Whether an end record whose counts differ from the records read is an error (default true). A
   * verifier that names the entries added or deleted turns it off and compares the counts itself.
   */
  checkEndCounts?: boolean;
  /**
   * Hand a blob's base64 over as bytes (`dataBytes`) rather than as a string in `data`, wherever the
   * line allows (see {@link parseLine}). They are a view into the reader's buffer, valid only until
   * the next record is asked for (the reader then reads over them): copy what is to be kept, and
   * never move their ArrayBuffer to a worker thread.
   */
  blobDataAsBytes?: boolean;
}

const SCHEMAS = {
  header: headerSchema,
  site: siteSchema,
  entry: entrySchema,
  blob: blobSchema,
  end: endSchema,
} as const;

/** One record as a line of the export (with its newline). */
export function exportLine(record: ExportRecord): string {
  if (record.type === 'blob' && record.data !== undefined) {
    // Base64 needs no JSON escaping: splice it in rather than have JSON.stringify copy a large string.
    const { data, ...rest } = record;
    return `${JSON.stringify(rest).slice(0, -1)},"data":"${data}"}\n`;
  }
  return `${JSON.stringify(record)}\n`;
}

/**
 * Reads an export file record by record, checking each line's shape, that it starts with a header of
 * a version this build reads, and that it ends with a matching `end` record.
 *
 * @throws AuditExportFormatError naming the line that is wrong, or when the file is cut short.
 */
export async function* readAuditExport(
  path: string,
  options: ReadAuditExportOptions = {},
): AsyncGenerator<ExportRecord & { dataBytes?: Uint8Array }> {
  const checkEndCounts = options.checkEndCounts ?? true;
  const asBytes = options.blobDataAsBytes ?? false;
  let line = 0;
  let entries = 0;
  let blobs = 0;
  let ended = false;
  for await (const bytes of lines(path)) {
    line++;
    if (bytes.length === 0) continue;
    if (ended) throw new AuditExportFormatError(`line ${line}: records follow the end record`);
    let raw: unknown;
    let dataBytes: Uint8Array | undefined;
    try {
      ({ raw, dataBytes } = parseLine(bytes, asBytes));
    } catch (cause) {
      throw new AuditExportFormatError(`line ${line} is not JSON; the export is damaged`, { cause });
    }
    const type = (raw as { type?: unknown } | null)?.type;
    const schema = typeof type === 'string' ? SCHEMAS[type as keyof typeof SCHEMAS] : undefined;
    if (!schema)
      throw new AuditExportFormatError(`line ${line}: unknown record type ${JSON.stringify(type)}`);
    if (line === 1 && type !== 'header') {
      throw new AuditExportFormatError(
        `line 1 is not an export header; is this a ${AUDIT_EXPORT_FORMAT} file?`,
      );
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new AuditExportFormatError(
        `line ${line} (${type}): ${issue.path.join('.') || 'record'}: ${issue.message}`,
      );
    }
    const record = parsed.data as ExportRecord;
    if (record.type === 'header' && line !== 1) {
      throw new AuditExportFormatError(`line ${line}: a second header; exports hold one federation`);
    }
    if (record.type === 'entry') entries++;
    if (record.type === 'blob') blobs++;
    if (record.type === 'end') {
      if (checkEndCounts && (record.entries !== entries || record.blobs !== blobs)) {
        throw new AuditExportFormatError(
          `the end record counts ${record.entries} entries and ${record.blobs} blobs, but the file holds ${entries} and ${blobs}`,
        );
      }
      ended = true;
    }
    yield dataBytes ? { ...record, dataBytes } : record;
  }
  if (line === 0) throw new AuditExportFormatError(`${path} is empty`);
  if (!ended)
    throw new AuditExportFormatError(`${path} ends without its end record; the export was cut short`);
}

const BLOB_PREFIX = Buffer.from('{"type":"blob"');
const DATA_KEY = Buffer.from(',"data":"');
const QUOTE = 0x22;

/**
 * One line as JSON. A blob line as {@link exportLine} writes it (data last) is split rather than
 * parsed whole: JSON.parse of the small head, and the base64 taken as it stands, which is valid JSON
 * string content exactly when it holds no quote or backslash (checked), as a string in `data` or,
 * with `asBytes`, a view of its bytes in the line. Anything else is parsed whole.
 */
function parseLine(bytes: Buffer, asBytes: boolean): { raw: unknown; dataBytes?: Uint8Array } {
  if (bytes.subarray(0, BLOB_PREFIX.length).equals(BLOB_PREFIX)) {
    const at = bytes.indexOf(DATA_KEY);
    const start = at + DATA_KEY.length;
    const end = bytes.length - 2;
    if (
      at > 0 &&
      bytes[end] === QUOTE &&
      bytes[end + 1] === 0x7d &&
      bytes.indexOf(QUOTE, start) === end &&
      bytes.indexOf(0x5c, start) === -1
    ) {
      const head = JSON.parse(`${bytes.toString('utf8', 0, at)}}`) as Record<string, unknown>;
      if (!Object.hasOwn(head, 'data')) {
        if (asBytes) return { raw: head, dataBytes: bytes.subarray(start, end) };
        return { raw: { ...head, data: bytes.toString('latin1', start, end) } };
      }
    }
  }
  return { raw: JSON.parse(bytes.toString('utf8')) };
}

/** Bytes read from the file at a time; the buffer grows past this only to hold a longer line. */
const READ_BYTES = 8 * 1024 * 1024;

/**
 * The file's lines as bytes (without the newline or a CR before it). Each line is a view into one
 * read buffer reused from read to read (grown to the longest line), valid until the next line is
 * asked for: reading allocates nothing per line or per read, so multi-gigabyte exports of
 * megabyte lines leave the garbage collector nothing to do.
 */
async function* lines(path: string): AsyncGenerator<Buffer> {
  const file = await open(path, 'r');
  try {
    let buf = Buffer.allocUnsafeSlow(READ_BYTES);
    // Bytes [start, end) of buf are read and not yet handed out; [start, scanned) hold no newline.
    let start = 0;
    let end = 0;
    let scanned = 0;
    let eof = false;
    for (;;) {
      const nl = scanned < end ? buf.subarray(0, end).indexOf(10, scanned) : -1;
      if (nl >= 0) {
        yield withoutCr(buf.subarray(start, nl));
        start = nl + 1;
        scanned = start;
        continue;
      }
      scanned = end;
      if (eof) break;
      if (start > 0) {
        // Move the line begun to the front of the buffer, to read the rest of it behind it.
        buf.copy(buf, 0, start, end);
        end -= start;
        scanned -= start;
        start = 0;
      }
      if (end === buf.length) {
        const bigger = Buffer.allocUnsafeSlow(2 * buf.length);
        buf.copy(bigger, 0, 0, end);
        buf = bigger;
      }
      const { bytesRead } = await file.read(buf, end, buf.length - end, null);
      if (bytesRead === 0) eof = true;
      end += bytesRead;
    }
    if (start < end) yield withoutCr(buf.subarray(start, end));
  } finally {
    await file.close();
  }
}

function withoutCr(line: Buffer): Buffer {
  return line.at(-1) === 13 ? line.subarray(0, -1) : line;
}
