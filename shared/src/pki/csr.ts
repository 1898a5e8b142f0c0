import { InvalidCsrError } from '../errors.js';
import { type CertificateAuthority, issueCertificate } from './ca.js';
import { ecdsaP256, generateTlsKeyPair, isP256PublicKey, x509 } from './x509.js';

/** Options for {@link createCsr}. */
export interface CreateCsrOptions {
  /** Requested common name; informational only, since the CA decides the identity it certifies. */
  commonName: string;
}

/** A CSR to send to the coordinator and the private key that must stay at the site. */
export interface CreatedCsr {
  csrPem: string;
  /** PKCS#8 PEM. Never leaves the site: only `csrPem` (which carries the public key) is sent. */
  keyPem: string;
}

/** Options for {@link signCsr}. */
export interface SignCsrOptions {
  /** The site's identity, chosen by the coordinator; becomes the certificate's common name. */
  siteId: string;
  /** Days from now until the certificate expires. Default 365. */
  validityDays?: number;
}

// A P-256 CSR is well under 1 KiB; the cap bounds the parsing work an unauthenticated enrolment
// request can cause.
const MAX_CSR_PEM_CHARS = 16 * 1024;

/** Generates an ECDSA P-256 key pair at a site and a PKCS#10 request signed with it. */
export async function createCsr(opts: CreateCsrOptions): Promise<CreatedCsr> {
  const { keys, privateKeyPem } = await generateTlsKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [opts.commonName] }],
    keys,
    signingAlgorithm: ecdsaP256,
  });
  return { csrPem: csr.toString('pem'), keyPem: privateKeyPem };
}

/**
 * Issues a site client certificate for the key in `csrPem`: CN=`siteId`, OU=site, clientAuth.
 *
 * Security: the CSR's self-signature is verified first, so the certified key is one the requester
 * holds (proof of possession). Its requested subject, extensions and attributes are ignored: the
 * coordinator alone decides the identity and the role, so a site cannot ask to be an operator.
 *
 * @throws InvalidCsrError when the CSR cannot be parsed, its signature does not verify, or its key is
 *   not ECDSA P-256.
 */
export async function signCsr(
  ca: CertificateAuthority,
  csrPem: string,
  opts: SignCsrOptions,
): Promise<string> {
  if (typeof csrPem !== 'string' || csrPem.length > MAX_CSR_PEM_CHARS) {
    throw new InvalidCsrError(`the CSR must be a PEM string of at most ${MAX_CSR_PEM_CHARS} characters`);
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (cause) {
    throw new InvalidCsrError('the CSR is not a PEM-encoded PKCS#10 certificate request', { cause });
  }
  if (!isP256PublicKey(csr.publicKey)) {
    throw new InvalidCsrError('the CSR key must be ECDSA P-256');
  }
  let verified: boolean;
  try {
    verified = await csr.verify();
  } catch (cause) {
    throw new InvalidCsrError('the CSR signature could not be checked', { cause });
  }
  if (!verified) {
    throw new InvalidCsrError('the CSR signature does not match its public key');
  }
  const { certPem } = await issueCertificate(ca, {
    commonName: opts.siteId,
    role: 'site',
    publicKeyPem: csr.publicKey.toString('pem'),
    validityDays: opts.validityDays,
  });
  return certPem;
}
