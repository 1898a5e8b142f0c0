import { type ServerUnaryCall, type ServerWritableStream, status } from '@grpc/grpc-js';
import type * as pb from '@radfed/proto';
import type { Logger } from '@radfed/shared';
import type { FederationService } from '../federations/service.js';
import type { Authenticator } from './auth.js';
import { type Handlers, serverStreaming, unary } from './handlers.js';

export interface AuditServiceDeps {
  federations: FederationService;
  auth: Authenticator;
  caCertPem: string;
  log: Logger;
}

const READERS = ['auditor', 'operator'] as const;

const NO_LEDGER = {
  code: status.UNIMPLEMENTED,
  details:
    'This coordinator does not keep a signed ledger yet; ledger reads arrive with the provenance release.',
};

/**
 * AuditService: read-only. Certificates are served now; the signed ledger and its reads are part of
 * the provenance work and answer UNIMPLEMENTED with that sentence until then.
 */
export function auditService(d: AuditServiceDeps): Handlers<pb.AuditServiceServer> {
  const reader = (call: Parameters<Authenticator['require']>[0]) => d.auth.require(call, READERS);
  const unimplemented = async (call: Parameters<Authenticator['require']>[0]): Promise<never> => {
    await reader(call);
    throw Object.assign(new Error(NO_LEDGER.details), NO_LEDGER);
  };
  return {
    listLedgerEntries: unary(
      d.log,
      'ListLedgerEntries',
      (call: ServerUnaryCall<pb.ListLedgerEntriesRequest, pb.ListLedgerEntriesResponse>) =>
        unimplemented(call),
    ),
    streamLedger: serverStreaming(
      d.log,
      'StreamLedger',
      (call: ServerWritableStream<pb.StreamLedgerRequest, pb.StreamLedgerResponse>) => unimplemented(call),
    ),
    getLedgerHead: unary(
      d.log,
      'GetLedgerHead',
      (call: ServerUnaryCall<pb.GetLedgerHeadRequest, pb.GetLedgerHeadResponse>) => unimplemented(call),
    ),
    downloadBlob: serverStreaming(
      d.log,
      'DownloadBlob',
      (call: ServerWritableStream<pb.DownloadBlobRequest, pb.DownloadBlobResponse>) => unimplemented(call),
    ),
    listCertificates: unary(
      d.log,
      'ListCertificates',
      async (call: ServerUnaryCall<pb.ListCertificatesRequest, pb.ListCertificatesResponse>) => {
        await reader(call);
        const sites = await d.federations.listSites(call.request.federationId);
        return {
          caCertificatePem: d.caCertPem,
          coordinatorSigningPublicKeyPem: '',
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
