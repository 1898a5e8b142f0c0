import { identifyPeer, type Role, UntrustedPeerError } from '@radfed/shared';
import { NotAuthenticatedError, SiteRevokedError, UnknownSiteError, WrongRoleError } from '../errors.js';
import type { Db } from '../store/client.js';
import type { SiteRow } from '../store/queries/sites.js';
import * as siteQ from '../store/queries/sites.js';

export type Caller =
  | { role: 'site'; site: SiteRow; fingerprint: string }
  | { role: 'operator' | 'auditor' | 'coordinator'; name: string; fingerprint: string };

/** The part of a grpc-js server call this needs. */
export interface CallWithAuth {
  getAuthContext(): { sslPeerCertificate?: { raw?: Buffer } } | null;
}

/**
 * Identifies the caller of an RPC from its TLS client certificate.
 *
 * The server requests but does not require client certificates (a site has none before it
 * enrols), so TLS alone proves only that the peer holds the key of the certificate it presented.
 * Here we check that certificate chains to the federation CA, carries a role allowed for the
 * method, and, for a site, that it is exactly the certificate issued at enrolment (fingerprint match)
 * to a site that has not been revoked.
 */
export class Authenticator {
  private readonly lastTouched = new Map<string, number>();

  constructor(
    private readonly db: Db,
    private readonly caCertPem: string,
  ) {}

  async require(call: CallWithAuth, allowed: readonly Role[]): Promise<Caller> {
    const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
    if (!raw || raw.length === 0) {
      throw new NotAuthenticatedError(
        `This call needs a client certificate (${allowed.join(' or ')}); sites enrol first with \`radfed-agent enrol\`, operators pass their certificate.`,
      );
    }
    let peer: ReturnType<typeof identifyPeer>;
    try {
      peer = identifyPeer(raw, this.caCertPem);
    } catch (err) {
      if (err instanceof UntrustedPeerError) {
        throw new NotAuthenticatedError(
          `The client certificate is not trusted by this federation: ${err.message}`,
          {
            cause: err,
          },
        );
      }
      throw err;
    }
    if (!allowed.includes(peer.role)) throw new WrongRoleError(peer.role, allowed);
    if (peer.role !== 'site')
      return { role: peer.role, name: peer.commonName, fingerprint: peer.fingerprint };
    const site = await siteQ.getSiteByFingerprint(this.db, peer.fingerprint);
    if (!site || site.id !== peer.commonName) throw new UnknownSiteError();
    if (site.state === 'revoked') throw new SiteRevokedError(site.revokedReason ?? 'no reason given');
    await this.touch(site.id);
    return { role: 'site', site, fingerprint: peer.fingerprint };
  }

  /** Records last contact, at most every few seconds per site to spare the database. */
  async touch(siteId: string, backend?: string): Promise<void> {
    const now = Date.now();
    if (!backend && now - (this.lastTouched.get(siteId) ?? 0) < 5000) return;
    this.lastTouched.set(siteId, now);
    await siteQ.touchSite(this.db, siteId, new Date(now), backend);
  }
}
