/**
 * The auditor's client side of AuditService: reads the ledger, certificates and stored updates and
 * writes the self-contained export file (or a PROV-JSON lineage document). Holds no key but the
 * auditor's TLS certificate; everything it writes is re-checked by `radfed audit verify`.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Metadata } from '@grpc/grpc-js';
import {
  AuditServiceClient,
  channelCredentials,
  channelOptions,
  type DownloadBlobsResponse,
  type GetLedgerHeadResponse,
  type LedgerEntry,
  RpcError,
  type StreamLedgerResponse,
  type TlsMaterial,
  unaryCall,
} from '@radfed/proto';
import {
  AUDIT_EXPORT_FORMAT,
  AUDIT_EXPORT_VERSION,
  type ExportRecord,
  exportLine,
  type LedgerEntryRecord,
  parseSigningPublicKey,
} from '@radfed/shared';
import { provDocument } from '../audit/prov.js';
import type { UpdateAcceptedPayload } from '../ledger/kinds.js';

/** HTTP/2 receive window of the audit client's connection and streams. */
const FLOW_CONTROL_WINDOW_BYTES = 16 * 1024 * 1024;

/** Blobs asked for per DownloadBlobs call: one lookup on the coordinator per batch. */
const BLOBS_PER_CALL = 100;

export interface ExportSummary {
  path: string;
  federationId: string;
  federationName: string;
  entries: number;
  /** Updates written with their bytes. */
  updates: number;
  /** Updates the coordinator no longer holds (written as absent, with its reason). */
  absent: number;
  bytes: number;
  /** Entries whose payload is not JSON: exported as stored, without the blobs they would name. */
  unreadable: number[];
}

/** Typed, promise-based AuditService client for the export. */
export class AuditClient {
  private readonly client: AuditServiceClient;

  constructor(address: string, tls: TlsMaterial) {
    // A wide HTTP/2 flow-control window: the default 64 KiB makes bulk blob downloads wait a round
    // trip per window, which a busy event loop on either side stretches to milliseconds.
    this.client = new AuditServiceClient(address, channelCredentials(tls), {
      ...channelOptions(),
      'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
    });
  }

  close(): void {
    this.client.close();
  }

  head(federation: string): Promise<GetLedgerHeadResponse> {
    return unaryCall(this.client, this.client.getLedgerHead, { federationId: federation }, new Metadata());
  }

  certificates(federation: string) {
    return unaryCall(this.client, this.client.listCertificates, { federationId: federation }, new Metadata());
  }

  /** Calls `onEntry` for each entry from `fromIndex` to the head as of the call. */
  async streamLedger(
    federation: string,
    fromIndex: number,
    onEntry: (e: LedgerEntry) => Promise<void>,
  ): Promise<void> {
    const call = this.client.streamLedger({ federationId: federation, fromIndex: BigInt(fromIndex) });
    let pending = Promise.resolve();
    await new Promise<void>((resolve, reject) => {
      call.on('data', (msg: StreamLedgerResponse) => {
        call.pause();
        pending = pending
          .then(() => onEntry(msg.entry!))
          .then(
            () => {
              call.resume();
            },
            (err: unknown) => {
              call.cancel();
              reject(err);
            },
          );
      });
      call.on('end', () => pending.then(resolve, reject));
      call.on('error', (err) => reject(RpcError.from(err)));
    });
  }

  /**
   * Downloads many blobs by digest in one call, handing each to `onBlob` in the order asked (the
   * stream pauses while `onBlob` runs, so memory holds one blob).
   */
  async blobs(
    federation: string,
    digests: string[],
    onBlob: (item: number, got: { data: Buffer } | { absent: string }) => Promise<void>,
  ): Promise<void> {
    const call = this.client.downloadBlobs({
      federationId: federation,
      digests: digests.map((x) => Buffer.from(x, 'hex')),
    });
    let parts: Buffer[] = [];
    let received = 0;
    let expected = 0;
    let pending = Promise.resolve();
    const hand = (item: number, got: { data: Buffer } | { absent: string }) => {
      expected++;
      call.pause();
      pending = pending
        .then(() => onBlob(item, got))
        .then(
          () => {
            call.resume();
          },
          (err: unknown) => {
            call.cancel();
            throw err;
          },
        );
    };
    await new Promise<void>((resolve, reject) => {
      call.on('data', (msg: DownloadBlobsResponse) => {
        if (msg.item !== expected) {
          call.cancel();
          reject(new Error(`blob ${msg.item} arrived where ${expected} belongs`));
          return;
        }
        if (msg.absent) return hand(msg.item, { absent: msg.absent });
        const chunk = msg.chunk!;
        if (Number(chunk.offset) !== received) {
          call.cancel();
          reject(new Error(`blob ${msg.item}: chunk at ${chunk.offset} arrived out of order`));
          return;
        }
        parts.push(chunk.data);
        received += chunk.data.length;
        if (received === Number(msg.totalBytes)) {
          const data = Buffer.concat(parts, received);
          parts = [];
          received = 0;
          hand(msg.item, { data });
        }
      });
      call.on('end', () => pending.then(resolve, reject));
      call.on('error', (err) => reject(RpcError.from(err)));
    });
    await pending;
    if (expected !== digests.length) {
      throw new Error(`the coordinator sent ${expected} of the ${digests.length} blobs asked for`);
    }
  }
}

/** A wire entry as the record the export and the verifier use. */
export function entryFromProto(federationId: string, e: LedgerEntry): LedgerEntryRecord {
  return {
    federationId,
    index: Number(e.index),
    kind: e.kind,
    payload: e.payload.toString('utf8'),
    previousDigest: e.previousDigest.toString('hex'),
    digest: e.digest.toString('hex'),
    signature: e.coordinatorSignature.toString('base64'),
    createdAt: (e.createdAt ?? new Date(0)).toISOString(),
  };
}

/**
 * Writes the export file (see `readAuditExport` for its layout): header, certificates, every ledger
 * entry up to the head reported at the start, then the stored update of every update accepted into a
 * sealed round, in ledger order (or why it is absent), and the end record. Streams throughout.
 */
export async function writeAuditExport(
  client: AuditClient,
  federation: string,
  path: string,
): Promise<ExportSummary> {
  const head = await client.head(federation);
  const federationId = head.federationId;
  const certs = await client.certificates(federationId);
  const last = head.entryCount > 0n ? Number(head.index) : -1;
  const out = createWriteStream(path, { highWaterMark: 4 * 1024 * 1024 });
  const summary: ExportSummary = {
    path,
    federationId,
    federationName: head.federationName,
    entries: 0,
    updates: 0,
    absent: 0,
    bytes: 0,
    unreadable: [],
  };
  const write = async (record: ExportRecord) => {
    const line = exportLine(record);
    summary.bytes += Buffer.byteLength(line);
    if (!out.write(line)) await once(out, 'drain');
  };
  try {
    await write({
      type: 'header',
      format: AUDIT_EXPORT_FORMAT,
      version: AUDIT_EXPORT_VERSION,
      exportedAt: new Date().toISOString(),
      federationId,
      federationName: head.federationName,
      coordinatorSigningKey: parseSigningPublicKey(certs.coordinatorSigningPublicKeyPem).toString('base64'),
      caCertificatePem: certs.caCertificatePem,
      head: { index: last, digest: head.digest.toString('hex') },
    });
    for (const s of certs.sites) {
      await write({
        type: 'site',
        siteId: s.siteId,
        certificatePem: s.certificatePem,
        signingPublicKey: s.signingPublicKey.toString('base64'),
        revoked: s.revoked,
      });
    }
    // Remember only what the blob pass needs; entries go straight to the file.
    const updates: { index: number; roundId: string; digest: string }[] = [];
    const sealed = new Set<string>();
    const bundles: { index: number; digest: string }[] = [];
    await client.streamLedger(federationId, 0, async (e) => {
      const entry = entryFromProto(federationId, e);
      if (entry.index > last) return;
      summary.entries++;
      const { federationId: _f, ...rest } = entry;
      await write({ type: 'entry', ...rest });
      const payload = parsePayload(entry.payload);
      if (!payload) {
        // Written as stored all the same: verify names the entry, which is the auditor's finding.
        summary.unreadable.push(entry.index);
      } else if (entry.kind === 'update.accepted') {
        const u = payload as unknown as UpdateAcceptedPayload;
        updates.push({ index: entry.index, roundId: u.roundId, digest: u.updateDigest });
      } else if (entry.kind === 'round.sealed') {
        sealed.add(String(payload.roundId));
      } else if (entry.kind === 'key_bundle.published') {
        bundles.push({ index: entry.index, digest: String(payload.publicParametersDigest) });
      }
    });
    let blobs = 0;
    const wanted = [
      ...bundles.map((b) => ({ ...b, role: 'he-public-parameters' as const })),
      ...updates.filter((u) => sealed.has(u.roundId)).map((u) => ({ ...u, role: 'update' as const })),
    ];
    for (let at = 0; at < wanted.length; at += BLOBS_PER_CALL) {
      const batch = wanted.slice(at, at + BLOBS_PER_CALL);
      await client.blobs(
        federationId,
        batch.map((b) => b.digest),
        async (item, got) => {
          const b = batch[item]!;
          if (b.role === 'update') {
            if ('data' in got) summary.updates++;
            else summary.absent++;
          }
          await write({ type: 'blob', role: b.role, entryIndex: b.index, digest: b.digest, ...encoded(got) });
          blobs++;
        },
      );
    }
    await write({ type: 'end', entries: summary.entries, blobs });
  } finally {
    out.end();
    await once(out, 'close');
  }
  return summary;
}

/** An entry's payload as an object, or undefined when the stored text is not a JSON object. */
function parsePayload(payload: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(payload);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function encoded(got: { data: Buffer } | { absent: string }): { data: string } | { absent: string } {
  return 'data' in got ? { data: got.data.toString('base64') } : { absent: got.absent };
}

/** Writes the federation's lineage as W3C PROV-JSON. */
export async function writeProvExport(
  client: AuditClient,
  federation: string,
  path: string,
): Promise<{ path: string; entries: number }> {
  const head = await client.head(federation);
  const entries: LedgerEntryRecord[] = [];
  await client.streamLedger(head.federationId, 0, async (e) => {
    entries.push(entryFromProto(head.federationId, e));
  });
  const doc = provDocument({ id: head.federationId, name: head.federationName }, entries);
  await writeFile(path, `${JSON.stringify(doc, null, 2)}\n`);
  return { path, entries: entries.length };
}
