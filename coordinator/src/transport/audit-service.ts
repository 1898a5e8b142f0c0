import type { ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js';
import type * as pb from '@radfed/proto';
import { type Logger, signingPublicKeyPem } from '@radfed/shared';
import type { BlobStore } from '../blobs/types.js';
import { BlobNotHeldError, InvalidRequestError } from '../errors.js';
import type { FederationService } from '../federations/service.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Db } from '../store/client.js';
import * as ledgerQ from '../store/queries/ledger.js';
import type { Authenticator } from './auth.js';
import { ledgerEntryToProto } from './convert.js';
import { type Handlers, serverStreaming, unary } from './handlers.js';

export interface AuditServiceDeps {
  db: Db;
  blobs: BlobStore;
  ledger: Ledger;
  federations: FederationService;
  auth: Authenticator;
  caCertPem: string;
  log: Logger;
}

/**
 * Security: auditors (and operators) read; nothing here writes, and nothing served decrypts
 * anything: entries hold digests, counts, metrics and signatures, blobs are the stored ciphertexts.
 * Sites may not call it, so one site never reads another's sample counts or metrics.
 */
const READERS = ['auditor', 'operator'] as const;

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;
const STREAM_BATCH = 500;
// One read and one message per MiB: well under the 4 MiB message bound clients accept.
const BLOB_CHUNK_BYTES = 1024 * 1024;
const MAX_BATCH = 1000;

/** AuditService: read-only access to the signed ledger, the blobs it names, and the certificates. */
export function auditService(d: AuditServiceDeps): Handlers<pb.AuditServiceServer> {
  const reader = (call: Parameters<Authenticator['require']>[0]) => d.auth.require(call, READERS);
  return {
    listLedgerEntries: unary(
      d.log,
      'ListLedgerEntries',
      async (call: ServerUnaryCall<pb.ListLedgerEntriesRequest, pb.ListLedgerEntriesResponse>) => {
        await reader(call);
        const fed = await d.federations.resolve(call.request.federationId);
        const size = call.request.pageSize || DEFAULT_PAGE;
        if (size > MAX_PAGE) throw new InvalidRequestError(`Pages hold at most ${MAX_PAGE} entries.`);
        const from = parsePageToken(call.request.pageToken);
        // One extra row tells whether another page follows.
        const rows = await ledgerQ.listEntries(d.db, fed.id, from, size + 1);
        const page = rows.slice(0, size);
        const last = page.at(-1);
        return {
          entries: page.map(ledgerEntryToProto),
          nextPageToken: rows.length > size && last ? pageToken(last.index + 1) : '',
        };
      },
    ),
    streamLedger: serverStreaming(
      d.log,
      'StreamLedger',
      async (call: ServerWritableStream<pb.StreamLedgerRequest, pb.StreamLedgerResponse>) => {
        await reader(call);
        const fed = await d.federations.resolve(call.request.federationId);
        const head = await ledgerQ.head(d.db, fed.id);
        let from = Number(call.request.fromIndex);
        while (head && from <= head.index && !call.cancelled) {
          const rows = await ledgerQ.listEntries(
            d.db,
            fed.id,
            from,
            Math.min(STREAM_BATCH, head.index - from + 1),
          );
          if (rows.length === 0) break;
          for (const row of rows) {
            if (!call.write({ entry: ledgerEntryToProto(row) }))
              await new Promise((r) => call.once('drain', r));
          }
          from = rows.at(-1)!.index + 1;
        }
      },
    ),
    getLedgerHead: unary(
      d.log,
      'GetLedgerHead',
      async (call: ServerUnaryCall<pb.GetLedgerHeadRequest, pb.GetLedgerHeadResponse>) => {
        await reader(call);
        const fed = await d.federations.resolve(call.request.federationId);
        const head = await ledgerQ.head(d.db, fed.id);
        return {
          index: BigInt(head?.index ?? 0),
          digest: Buffer.from(head?.digest ?? '', 'hex'),
          federationId: fed.id,
          federationName: fed.name,
          entryCount: BigInt(await ledgerQ.countEntries(d.db, fed.id)),
        };
      },
    ),
    downloadBlob: serverStreaming(
      d.log,
      'DownloadBlob',
      async (call: ServerWritableStream<pb.DownloadBlobRequest, pb.DownloadBlobResponse>) => {
        await reader(call);
        const fed = await d.federations.resolve(call.request.federationId);
        if (call.request.digest.length !== 32) {
          throw new InvalidRequestError('Name the blob by its 32-byte sha256, as the ledger records it.');
        }
        const digest = call.request.digest.toString('hex');
        const key = await ledgerQ.findBlobKey(d.db, fed.id, digest);
        const total = key ? await d.blobs.size(key) : undefined;
        if (!key || total === undefined) throw new BlobNotHeldError(digest);
        const offset = Number(call.request.offset);
        if (offset < 0 || offset > total) {
          throw new InvalidRequestError(
            `Offset ${offset} is outside the blob (${total} bytes); resume from 0.`,
          );
        }
        for (let at = offset; at < total && !call.cancelled; at += BLOB_CHUNK_BYTES) {
          const data = await d.blobs.read(key, at, BLOB_CHUNK_BYTES);
          const msg = { chunk: { offset: BigInt(at), data: Buffer.from(data) }, totalBytes: BigInt(total) };
          if (!call.write(msg)) await new Promise((r) => call.once('drain', r));
        }
      },
    ),
    downloadBlobs: serverStreaming(
      d.log,
      'DownloadBlobs',
      async (call: ServerWritableStream<pb.DownloadBlobsRequest, pb.DownloadBlobsResponse>) => {
        await reader(call);
        const fed = await d.federations.resolve(call.request.federationId);
        const digests = call.request.digests;
        if (digests.length > MAX_BATCH)
          throw new InvalidRequestError(`Ask for at most ${MAX_BATCH} blobs a call.`);
        if (digests.some((x) => x.length !== 32)) {
          throw new InvalidRequestError('Name each blob by its 32-byte sha256, as the ledger records it.');
        }
        const hex = digests.map((x) => x.toString('hex'));
        const keys = await ledgerQ.findBlobKeys(d.db, fed.id, hex);
        const send = async (msg: pb.DownloadBlobsResponse) => {
          if (!call.write(msg)) await new Promise((r) => call.once('drain', r));
        };
        for (const [item, digest] of hex.entries()) {
          if (call.cancelled) return;
          const key = keys.get(digest);
          const data = key ? await d.blobs.get(key).catch(() => undefined) : undefined;
          if (!data) {
            await send({
              item,
              totalBytes: 0n,
              chunk: undefined,
              absent: new BlobNotHeldError(digest).message,
            });
            continue;
          }
          const totalBytes = BigInt(data.byteLength);
          for (let at = 0; at === 0 || at < data.byteLength; at += BLOB_CHUNK_BYTES) {
            const chunk = { offset: BigInt(at), data: Buffer.from(data.subarray(at, at + BLOB_CHUNK_BYTES)) };
            await send({ item, totalBytes, chunk, absent: '' });
          }
        }
      },
    ),
    listCertificates: unary(
      d.log,
      'ListCertificates',
      async (call: ServerUnaryCall<pb.ListCertificatesRequest, pb.ListCertificatesResponse>) => {
        await reader(call);
        const sites = await d.federations.listSites(call.request.federationId);
        return {
          caCertificatePem: d.caCertPem,
          coordinatorSigningPublicKeyPem: signingPublicKeyPem(d.ledger.publicKey),
          sites: sites.map((s) => ({
            siteId: s.id,
            certificatePem: s.certPem,
            signingPublicKey: Buffer.from(s.signingPublicKey, 'base64'),
            revoked: s.state === 'revoked',
          })),
        };
      },
    ),
  };
}

/** Page tokens are opaque to callers; inside, the index the next page starts at. */
function pageToken(index: number): string {
  return Buffer.from(`ledger:${index}`, 'utf8').toString('base64url');
}

function parsePageToken(token: string): number {
  if (!token) return 0;
  const match = /^ledger:(\d+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (!match)
    throw new InvalidRequestError(
      'This page token is not one the coordinator issued; start from the first page.',
    );
  return Number(match[1]);
}
