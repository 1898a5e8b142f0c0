import { createCsr, generateKeyWrapKeyPair, generateSigningKeyPair } from '@radfed/shared';
import { AlreadyEnrolledError } from '../errors.js';
import { type AgentIdentity, isEnrolled, loadIdentity, saveIdentity } from '../state/agent-state.js';
import { SiteClient } from '../transport/site-client.js';

export const AGENT_VERSION = '0.1.0';

export interface EnrolOptions {
  coordinator: string;
  caCertPem: string;
  token: string;
  stateDir: string;
}

/**
 * Enrols this site: makes its TLS, signing (Ed25519) and key-wrap (X25519) keys locally, sends only
 * a CSR and public keys with the single-use token, and stores the returned certificate.
 */
export async function enrol(opts: EnrolOptions): Promise<AgentIdentity> {
  if (isEnrolled(opts.stateDir)) {
    const existing = await loadIdentity(opts.stateDir);
    throw new AlreadyEnrolledError(opts.stateDir, existing.siteId);
  }
  const csr = await createCsr({ commonName: 'radfed-site' });
  const signing = generateSigningKeyPair();
  const keyWrap = generateKeyWrapKeyPair();
  const client = new SiteClient(opts.coordinator, { caCertPem: opts.caCertPem });
  try {
    const res = await client.enrol({
      token: opts.token,
      csrPem: csr.csrPem,
      signingPublicKey: signing.publicKeyRaw,
      keyWrapPublicKey: keyWrap.publicKeyRaw,
      agentVersion: AGENT_VERSION,
    });
    const identity: AgentIdentity = {
      coordinator: opts.coordinator,
      siteId: res.siteId,
      siteName: res.siteName,
      federationId: res.federationId,
      enrolledAt: new Date().toISOString(),
      caCertPem: res.caCertificatePem || opts.caCertPem,
      certPem: res.certificatePem,
      tlsKeyPem: csr.keyPem,
      signingKeyPem: signing.privateKeyPem,
      keyWrapKeyPem: keyWrap.privateKeyPem,
    };
    await saveIdentity(opts.stateDir, identity);
    return identity;
  } finally {
    client.close();
  }
}
