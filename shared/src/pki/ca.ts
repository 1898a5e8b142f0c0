import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { InvalidCertificateOptionsError } from '../errors.js';
import { isRole, type Role } from './roles.js';
import { ecdsaP256, generateTlsKeyPair, importSigningKey, isP256PublicKey, x509 } from './x509.js';

/** A CA's certificate and PKCS#8 private key, both PEM. */
export interface CertificateAuthority {
  certPem: string;
  keyPem: string;
}

/** Options for {@link createCertificateAuthority}. */
export interface CreateCertificateAuthorityOptions {
  /** Subject common name. Default `RadFed Federation CA`. */
  commonName?: string;
  /** Days from now until the CA expires. Default 3650. */
  validityDays?: number;
}

/** Subject alternative names for a certificate; `ip` accepts IPv4 and IPv6 literals. */
export interface SubjectAltNames {
  dns?: string[];
  ip?: string[];
}

/** Options for {@link issueCertificate}. */
export interface IssueCertificateOptions {
  /** Subject common name, 1 to 64 characters. */
  commonName: string;
  /** Role the certificate grants; written to the subject as `OU=<role>`. */
  role: Role;
  subjectAltNames?: SubjectAltNames;
  /** Days from now until the certificate expires. Default 365. */
  validityDays?: number;
  /**
   * SPKI PEM public key (ECDSA P-256) to certify. When absent a fresh ECDSA P-256 key pair is generated and its
   * private key returned.
   */
  publicKeyPem?: string;
}

/** An issued certificate; `keyPem` is present only when {@link issueCertificate} generated the key. */
export interface IssuedCertificate {
  certPem: string;
  keyPem?: string;
}

const DEFAULT_CA_DAYS = 3650;
const DEFAULT_LEAF_DAYS = 365;
const DAY_MS = 86_400_000;
// Backdating notBefore tolerates peers whose clocks run a little behind ours.
const CLOCK_SKEW_MS = 5 * 60_000;
// X.520 upper bound for a common name.
const MAX_COMMON_NAME = 64;

/**
 * Creates a self-signed federation CA: ECDSA P-256, basicConstraints CA (path length 0, so it can
 * only sign leaves), keyUsage keyCertSign and cRLSign.
 */
export async function createCertificateAuthority(
  opts: CreateCertificateAuthorityOptions = {},
): Promise<CertificateAuthority> {
  const commonName = checkCommonName(opts.commonName ?? 'RadFed Federation CA');
  const { keys, privateKeyPem } = await generateTlsKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [commonName] }],
    keys,
    signingAlgorithm: ecdsaP256,
    ...validity(opts.validityDays ?? DEFAULT_CA_DAYS),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: privateKeyPem };
}

/**
 * Issues a leaf certificate signed by `ca`. The role goes into the subject as `OU=<role>`; the
 * extended key usage is serverAuth for `coordinator` and clientAuth for every other role, so a client
 * certificate cannot serve TLS and the server certificate cannot authenticate as a client.
 */
export async function issueCertificate(
  ca: CertificateAuthority,
  opts: IssueCertificateOptions & { publicKeyPem?: undefined },
): Promise<Required<IssuedCertificate>>;
export async function issueCertificate(
  ca: CertificateAuthority,
  opts: IssueCertificateOptions,
): Promise<IssuedCertificate>;
export async function issueCertificate(
  ca: CertificateAuthority,
  opts: IssueCertificateOptions,
): Promise<IssuedCertificate> {
  const commonName = checkCommonName(opts.commonName);
  if (!isRole(opts.role)) {
    throw new InvalidCertificateOptionsError(`unknown role ${JSON.stringify(opts.role)}`);
  }
  const sans = subjectAltNames(opts.subjectAltNames);
  let publicKey: x509.PublicKey;
  let keyPem: string | undefined;
  if (opts.publicKeyPem === undefined) {
    const generated = await generateTlsKeyPair();
    publicKey = await x509.PublicKey.create(generated.keys.publicKey);
    keyPem = generated.privateKeyPem;
  } else {
    try {
      publicKey = new x509.PublicKey(opts.publicKeyPem);
    } catch (cause) {
      throw new InvalidCertificateOptionsError('publicKeyPem is not an SPKI PEM public key', { cause });
    }
    if (!isP256PublicKey(publicKey)) {
      throw new InvalidCertificateOptionsError('publicKeyPem must be an ECDSA P-256 key');
    }
  }

  const caCert = new x509.X509Certificate(ca.certPem);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    // JSON names, never a string DN: a common name containing `,` or `=` must not be able to add
    // RDNs such as a second OU and so claim another role.
    subject: [{ OU: [opts.role] }, { CN: [commonName] }],
    issuer: caCert.subjectName,
    publicKey,
    signingKey: await importSigningKey(ca.keyPem),
    signingAlgorithm: ecdsaP256,
    ...validity(opts.validityDays ?? DEFAULT_LEAF_DAYS),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(
        [opts.role === 'coordinator' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
      ...(sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
    ],
  });
  return keyPem === undefined ? { certPem: cert.toString('pem') } : { certPem: cert.toString('pem'), keyPem };
}

function checkCommonName(commonName: string): string {
  if (typeof commonName !== 'string' || commonName.length === 0 || commonName.length > MAX_COMMON_NAME) {
    throw new InvalidCertificateOptionsError(`common name must be 1 to ${MAX_COMMON_NAME} characters`);
  }
  return commonName;
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(days) || days <= 0) {
    throw new InvalidCertificateOptionsError(`validityDays must be a positive number, got ${days}`);
  }
  const now = Date.now();
  // X.509 times have one-second resolution; truncating keeps the parsed dates equal to what we set.
  const second = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);
  return { notBefore: second(now - CLOCK_SKEW_MS), notAfter: second(now + days * DAY_MS) };
}

function subjectAltNames(names: SubjectAltNames | undefined): x509.JsonGeneralName[] {
  const dns = (names?.dns ?? []).map((value) => {
    if (value.length === 0 || isIP(value) !== 0) {
      throw new InvalidCertificateOptionsError(`${JSON.stringify(value)} is not a DNS name`);
    }
    return { type: 'dns' as const, value };
  });
  const ip = (names?.ip ?? []).map((value) => {
    if (isIP(value) === 0)
      throw new InvalidCertificateOptionsError(`${JSON.stringify(value)} is not an IP address`);
    return { type: 'ip' as const, value };
  });
  return [...dns, ...ip];
}

/**
 * 128 random bits as a positive DER INTEGER: the top bit cleared keeps it positive and the next bit
 * set keeps the encoding minimal (no leading zero byte), as RFC 5280 section 4.1.2.2 requires.
 */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}
