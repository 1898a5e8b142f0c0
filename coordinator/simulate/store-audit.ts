/**
 * The audit export writer's source (`writeAuditExport`, which `radfed audit export` runs over
 * AuditService) served straight from a simulated federation's store: the same head, certificates,
 * ledger entries and blobs AuditService would send, read with the same queries, without gRPC.
 */
import type { LedgerEntry } from '@radfed/proto';
import { signingPublicKeyPem } from '@radfed/shared';
import type { BlobStore } from '../src/blobs/types.js';
import type { ExportSummary } from '../src/cli/audit-export.js';
import { type AuditClient, writeAuditExport } from '../src/cli/audit-export.js';
import type { FederationService } from '../src/federations/service.js';
import type { Ledger } from '../src/ledger/ledger.js';
import type { Db } from '../src/store/client.js';
import * as ledgerQ from '../src/store/queries/ledger.js';
import { ledgerEntryToProto } from '../src/transport/convert.js';

export interface StoreAuditDeps {
  db: Db;
  blobs: BlobStore;
  ledger: Ledger;
  federations: FederationService;
  caCertPem: string;
}

/** Writes the federation's audit export file to `path`, as `radfed audit export` would. */
export function exportFromStore(
  d: StoreAuditDeps,
  federationId: string,
  path: string,
): Promise<ExportSummary> {
  const source = {
    async head(federation: string) {
      const fed = await d.federations.resolve(federation);
      const head = await ledgerQ.head(d.db, fed.id);
      return {
        index: BigInt(head?.index ?? 0),
        digest: Buffer.from(head?.digest ?? '', 'hex'),
        federationId: fed.id,
        federationName: fed.name,
        entryCount: BigInt(await ledgerQ.countEntries(d.db, fed.id)),
      };
    },
    async certificates(federation: string) {
      const sites = await d.federations.listSites(federation);
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
    async streamLedger(federation: string, fromIndex: number, onEntry: (e: LedgerEntry) => Promise<void>) {
      const head = await ledgerQ.head(d.db, federation);
      let from = fromIndex;
      while (head && from <= head.index) {
        const rows = await ledgerQ.listEntries(d.db, federation, from, Math.min(500, head.index - from + 1));
        if (rows.length === 0) break;
        for (const row of rows) await onEntry(ledgerEntryToProto(row));
        from = rows.at(-1)!.index + 1;
      }
    },
    async blobs(
      federation: string,
      digests: string[],
      onBlob: (item: number, got: { data: Buffer } | { absent: string }) => Promise<void>,
    ) {
      const keys = await ledgerQ.findBlobKeys(d.db, federation, digests);
      for (const [item, digest] of digests.entries()) {
        const key = keys.get(digest);
        const data = key ? await d.blobs.get(key).catch(() => undefined) : undefined;
        await onBlob(item, data ? { data: Buffer.from(data) } : { absent: `no blob is held for ${digest}` });
      }
    },
  };
  // Structurally AuditClient's calls; the class also holds a gRPC channel, which this never needs.
  return writeAuditExport(source as unknown as AuditClient, federationId, path);
}
