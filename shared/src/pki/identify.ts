import { createHash, X509Certificate } from 'node:crypto';
import { UntrustedPeerError } from '../errors.js';
import { isRole, type Role } from './roles.js';
import { x509 } from './x509.js';

/** Who a verified peer certificate says the peer is. */
export interface PeerIdentity {
  /** Subject common name: the site id, or `operator` / `auditor` / the coordinator's name. */
  commonName: string;
  role: Role;
  /** Lower-case hex SHA-256 of the certificate's DER encoding. */
  fingerprint: string;
  /** End of the certificate's validity window. */
  notAfter: Date;
}

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/**
 * Verifies that `certDer` was issued and signed by the CA in `caCertPem`, is inside its validity
 * window at `now`, is a leaf, and carries exactly one known role, and returns who it identifies.
 *
 * Security: this is the authorisation check for a gRPC server that requests client certificates
 * without requiring them (so enrolment can run before a site has one). The TLS layer then accepts any
 * certificate or none, so nothing here trusts the handshake: the issuer, the CA signature and the
 * dates are checked again, and the role is read from the parsed subject (never from a DN string that
 * a crafted common name could extend). The CA must issue leaves directly; intermediates are refused.
 *
 * @param certDer the peer certificate, DER (e.g. `call.getAuthContext().sslPeerCertificate.raw`).
 * @param caCertPem the federation CA certificate, PEM.
 * @param now the time to check validity at. Default: the current time.
 * @throws UntrustedPeerError with a `reason` when any check fails.
 */
export function identifyPeer(
  certDer: Buffer | Uint8Array,
  caCertPem: string,
  now: Date = new Date(),
): PeerIdentity {
  let cert: X509Certificate;
  let parsed: x509.X509Certificate;
  try {
    cert = new X509Certificate(certDer);
    parsed = new x509.X509Certificate(certDer);
  } catch (cause) {
    throw new UntrustedPeerError('malformed', 'the peer certificate is not a DER X.509 certificate', {
      cause,
    });
  }
  const ca = new X509Certificate(caCertPem);

  if (!cert.checkIssued(ca)) {
    throw new UntrustedPeerError('wrong-issuer', 'the peer certificate was not issued by the federation CA');
  }
  if (!cert.verify(ca.publicKey)) {
    throw new UntrustedPeerError('bad-signature', 'the peer certificate is not signed by the federation CA');
  }
  if (now < parsed.notBefore) {
    throw new UntrustedPeerError(
      'not-yet-valid',
      `the peer certificate is not valid before ${parsed.notBefore.toISOString()}`,
    );
  }
  if (now > parsed.notAfter) {
    throw new UntrustedPeerError(
      'expired',
      `the peer certificate expired at ${parsed.notAfter.toISOString()}`,
    );
  }
  if (cert.ca) {
    throw new UntrustedPeerError('ca-certificate', 'a CA certificate cannot identify a peer');
  }

  const roles = parsed.subjectName.getField('OU');
  const commonNames = parsed.subjectName.getField('CN');
  const role = roles[0];
  const commonName = commonNames[0];
  if (roles.length !== 1 || !isRole(role)) {
    throw new UntrustedPeerError(
      'unknown-role',
      'the peer certificate does not carry exactly one known role',
    );
  }
  if (commonNames.length !== 1 || commonName === undefined || commonName.length === 0) {
    throw new UntrustedPeerError(
      'unknown-role',
      'the peer certificate does not carry exactly one common name',
    );
  }
  // Our CA always sets the EKU to match the role; a mismatch means the certificate came from some
  // other issuing path with this CA key and is not one we minted for this role.
  const usage = role === 'coordinator' ? SERVER_AUTH : CLIENT_AUTH;
  if (!(cert.keyUsage ?? []).includes(usage)) {
    throw new UntrustedPeerError('wrong-key-usage', `a ${role} certificate must allow ${usage} key usage`);
  }

  return { commonName, role, fingerprint: fingerprint(cert.raw), notAfter: parsed.notAfter };
}

/** Lower-case hex SHA-256 of a certificate's DER encoding, given as PEM or DER. */
export function fingerprint(cert: string | Buffer | Uint8Array): string {
  const der = typeof cert === 'string' ? new X509Certificate(cert).raw : cert;
  return createHash('sha256').update(der).digest('hex');
}
