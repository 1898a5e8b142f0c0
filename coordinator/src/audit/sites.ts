import { X509Certificate } from 'node:crypto';
import { type ExportHeader, type ExportSite, fingerprint } from '@radfed/shared';
import type { LedgerAudit } from './ledger-audit.js';

/** The export's certificates must be the ones the ledger enrolled, issued by the CA it pinned. */
export function checkSites(a: LedgerAudit, header: ExportHeader, sites: ExportSite[]): void {
  const created = a.federation!;
  let ca: X509Certificate | undefined;
  try {
    ca = new X509Certificate(header.caCertificatePem);
    if (fingerprint(ca.raw) !== created.caCertificateFingerprint) {
      a.fail(0, 'federation.created', 'pins a CA certificate other than the one in the export');
      ca = undefined;
    }
  } catch {
    a.fail(undefined, undefined, 'the export does not hold a readable CA certificate');
  }
  const listed = new Map(sites.map((s) => [s.siteId, s]));
  for (const [siteId, site] of a.sites) {
    const fail = (message: string) => a.fail(site.index, 'site.enrolled', message);
    const record = listed.get(siteId);
    if (!record) {
      fail(`enrols site ${siteId}, whose certificate the export omits`);
      continue;
    }
    try {
      const cert = new X509Certificate(record.certificatePem);
      if (fingerprint(cert.raw) !== site.certificateFingerprint) {
        fail(`records a certificate fingerprint for ${siteId} that the exported certificate does not have`);
      } else if (ca && !(cert.checkIssued(ca) && cert.verify(ca.publicKey))) {
        fail(`enrols ${siteId} with a certificate the federation CA did not issue`);
      }
    } catch {
      fail(`enrols ${siteId}, whose exported certificate is not readable`);
    }
    if (
      Buffer.from(record.signingPublicKey, 'base64').toString('base64') !== site.signingKey.toString('base64')
    ) {
      fail(`records a signing key for ${siteId} other than the one the coordinator now reports`);
    }
    if (record.revoked !== (site.revokedIndex !== undefined)) {
      fail(
        record.revoked
          ? `enrols ${siteId}, which the coordinator reports revoked though the ledger records no revocation`
          : `enrols ${siteId}, which the ledger revoked but the coordinator reports active`,
      );
    }
  }
  for (const siteId of listed.keys()) {
    if (!a.sites.has(siteId))
      a.fail(undefined, undefined, `the export lists site ${siteId}, which the ledger never enrolled`);
  }
}
