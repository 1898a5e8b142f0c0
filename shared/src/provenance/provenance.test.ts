import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../canonical/canonical.js';
import { AuditExportFormatError } from '../errors.js';
import { generateSigningKeyPair } from '../keys/signing.js';
import { type ExportRecord, exportLine, readAuditExport } from './audit-export.js';
import {
  checkLedgerEntry,
  GENESIS_DIGEST,
  type LedgerEntryRecord,
  ledgerEntryDigest,
  signLedgerDigest,
} from './ledger-entry.js';
import { parseSigningPublicKey, signingPublicKeyPem } from './public-key.js';
import { receiptMessage, signReceipt, verifyReceipt } from './receipt.js';
import { signedUpdateMessage, signUpdate, verifyUpdateSignature } from './signed-update.js';

const site = generateSigningKeyPair();
const coordinator = generateSigningKeyPair();
const facts = {
  roundId: 'rd_1',
  modelVersion: 3,
  updateDigest: 'ab'.repeat(32),
  datasetCommitment: 'cd'.repeat(32),
  metrics: { loss: 0.5, initial_loss: 1 },
  sampleCount: 40,
};

describe('signed updates and receipts', () => {
  it('signs the canonical, domain-tagged facts; any changed fact fails', () => {
    const message = signedUpdateMessage(facts).toString('utf8');
    expect(message).toBe(canonicalJson({ domain: 'radfed.signed-update.v1', ...facts }));
    const signature = signUpdate(site.privateKeyPem, facts);
    expect(verifyUpdateSignature(site.publicKeyRaw, facts, signature)).toBe(true);
    expect(verifyUpdateSignature(site.publicKeyRaw, { ...facts, sampleCount: 41 }, signature)).toBe(false);
    expect(verifyUpdateSignature(site.publicKeyRaw, { ...facts, metrics: { loss: 0.25 } }, signature)).toBe(
      false,
    );
    expect(verifyUpdateSignature(coordinator.publicKeyRaw, facts, signature)).toBe(false);
  });

  it('a receipt signature does not verify as an update signature, nor for another entry', () => {
    const receipt = {
      federationId: 'fd_1',
      roundId: 'rd_1',
      siteId: 'st_1',
      updateDigest: facts.updateDigest,
      ledgerIndex: 7,
      acceptedAt: '2026-01-01T00:00:00.000Z',
    };
    const signature = signReceipt(coordinator.privateKeyPem, receipt);
    expect(verifyReceipt(coordinator.publicKeyRaw, receipt, signature)).toBe(true);
    expect(verifyReceipt(coordinator.publicKeyRaw, { ...receipt, ledgerIndex: 8 }, signature)).toBe(false);
    expect(receiptMessage(receipt).equals(signedUpdateMessage(facts))).toBe(false);
  });

  it('publishes and reads back the coordinator key as PEM or base64', () => {
    const pem = signingPublicKeyPem(coordinator.publicKeyRaw);
    expect(pem).toMatch(/BEGIN PUBLIC KEY/);
    expect(parseSigningPublicKey(pem).equals(coordinator.publicKeyRaw)).toBe(true);
    expect(
      parseSigningPublicKey(coordinator.publicKeyRaw.toString('base64')).equals(coordinator.publicKeyRaw),
    ).toBe(true);
    expect(() => parseSigningPublicKey('bm90IGEga2V5')).toThrow();
  });
});

/** A chain of entries signed with `key`, as the coordinator's Ledger appends them. */
function chain(payloads: object[], key = coordinator.privateKeyPem): LedgerEntryRecord[] {
  let previousDigest = GENESIS_DIGEST;
  return payloads.map((p, index) => {
    const unsigned = {
      federationId: 'fd_1',
      index,
      kind: 'test.entry',
      payload: canonicalJson(p),
      previousDigest,
      createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, index)).toISOString(),
    };
    const digest = ledgerEntryDigest(unsigned);
    previousDigest = digest;
    return { ...unsigned, digest, signature: signLedgerDigest(key, digest) };
  });
}

const check = (entries: LedgerEntryRecord[], key = coordinator.publicKeyRaw) => {
  let expected = { federationId: 'fd_1', index: 0, previousDigest: GENESIS_DIGEST };
  return entries.map((e) => {
    const problem = checkLedgerEntry(e, expected, key);
    expected = { federationId: 'fd_1', index: e.index + 1, previousDigest: e.digest };
    return problem;
  });
};

describe('ledger entries', () => {
  it('a well-formed chain checks', () => {
    expect(check(chain([{ a: 1 }, { b: 2 }, { c: 3 }]))).toEqual([undefined, undefined, undefined]);
  });

  it('names what is wrong with an entry', () => {
    const entries = chain([{ a: 1 }, { b: 2 }, { c: 3 }]);
    const edited = entries.map((e, i) => (i === 1 ? { ...e, payload: '{"b":3}' } : e));
    expect(check(edited)[1]).toMatch(/does not match its digest/);
    const spaced = entries.map((e, i) => (i === 1 ? { ...e, payload: '{"b": 2}' } : e));
    expect(check(spaced)[1]).toMatch(/not in canonical form/);
    expect(check([entries[0]!, entries[2]!])[1]).toMatch(/entry 1 is missing/);
    expect(check([entries[1]!, entries[0]!])[0]).toMatch(/out of order|missing/);
    expect(check(chain([{ a: 1 }], generateSigningKeyPair().privateKeyPem))[0]).toMatch(
      /not signed by the coordinator/,
    );
    const relinked = entries.map((e, i) => (i === 2 ? { ...e, previousDigest: entries[0]!.digest } : e));
    expect(check(relinked)[2]).toMatch(/does not link to the entry before it/);
  });
});

describe('audit export file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'radfed-export-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const header: ExportRecord = {
    type: 'header',
    format: 'radfed-audit-export',
    version: 1,
    exportedAt: '2026-01-01T00:00:00.000Z',
    federationId: 'fd_1',
    federationName: 'f',
    coordinatorSigningKey: coordinator.publicKeyRaw.toString('base64'),
    caCertificatePem: '',
    head: { index: 0, digest: '' },
  };
  const blob: ExportRecord = {
    type: 'blob',
    role: 'update',
    entryIndex: 0,
    digest: 'ab'.repeat(32),
    data: Buffer.from('hello').toString('base64'),
  };

  it('writes blob lines exactly as JSON would, and reads records back', async () => {
    expect(exportLine(blob)).toBe(`${JSON.stringify(blob)}\n`);
    const path = join(dir, 'ok.ndjson');
    const end: ExportRecord = { type: 'end', entries: 0, blobs: 1 };
    writeFileSync(path, [header, blob, end].map((r) => exportLine(r)).join(''));
    const records = [];
    for await (const r of readAuditExport(path)) records.push(r);
    expect(records.map((r) => r.type)).toEqual(['header', 'blob', 'end']);
  });

  it('refuses a file cut short, one without a header, and a damaged line', async () => {
    const read = async (text: string) => {
      const path = join(dir, 'bad.ndjson');
      writeFileSync(path, text);
      for await (const _ of readAuditExport(path)) {
        // drain
      }
    };
    await expect(read(exportLine(header) + exportLine(blob))).rejects.toThrow(/cut short/);
    await expect(read(exportLine(blob))).rejects.toThrow(AuditExportFormatError);
    await expect(read(`${exportLine(header)}{"type":"blob",\n`)).rejects.toThrow(/line 2 is not JSON/);
    await expect(
      read(exportLine(header) + exportLine({ type: 'end', entries: 2, blobs: 0 })),
    ).rejects.toThrow(/counts 2 entries/);
  });

  it('on request, leaves the end counts to the caller and hands blob data over as bytes', async () => {
    const path = join(dir, 'options.ndjson');
    const end: ExportRecord = { type: 'end', entries: 2, blobs: 1 };
    writeFileSync(path, [header, blob, end].map((r) => exportLine(r)).join(''));
    const records = [];
    let data: string | undefined;
    for await (const r of readAuditExport(path, { checkEndCounts: false, blobDataAsBytes: true })) {
      records.push(r);
      // The bytes are valid until the next record is asked for.
      if (r.dataBytes) data = Buffer.from(r.dataBytes).toString('latin1');
    }
    expect(records.at(-1)).toEqual(end);
    const read = records[1]!;
    expect(read.type).toBe('blob');
    expect('data' in read).toBe(false);
    expect(data).toBe(Buffer.from('hello').toString('base64'));
  });

  it('reads lines longer than a read, across reads, and with CRLF endings', async () => {
    // Blobs of 12 MB and 20 MB of base64: longer than one read (8 MiB), so the reader's buffer grows.
    const blobs = [12e6, 3, 20e6].map(
      (chars, i): ExportRecord => ({
        type: 'blob',
        role: 'update',
        entryIndex: i,
        digest: 'ab'.repeat(32),
        data: String.fromCharCode(65 + i).repeat(chars),
      }),
    );
    const end: ExportRecord = { type: 'end', entries: 0, blobs: blobs.length };
    const text = [header, ...blobs, end].map((r) => exportLine(r)).join('');
    for (const [name, content] of [
      ['lf', text],
      ['crlf', text.replaceAll('\n', '\r\n')],
    ] as const) {
      writeFileSync(join(dir, `${name}.ndjson`), content);
      const asStrings = [];
      for await (const r of readAuditExport(join(dir, `${name}.ndjson`))) asStrings.push(r);
      expect(asStrings).toEqual([header, ...blobs, end]);
      const asBytes = [];
      for await (const r of readAuditExport(join(dir, `${name}.ndjson`), { blobDataAsBytes: true })) {
        if (r.type !== 'blob') continue;
        const { dataBytes, ...rest } = r;
        asBytes.push({ ...rest, data: Buffer.from(dataBytes!).toString('latin1') });
      }
      expect(asBytes).toEqual(blobs);
    }
  });
});
