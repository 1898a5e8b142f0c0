import { createHash, X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { UntrustedPeerError } from '../errors.js';
import { type CertificateAuthority, createCertificateAuthority, issueCertificate } from './ca.js';
import { fingerprint, identifyPeer } from './identify.js';
import { ecdsaP256, generateTlsKeyPair, importSigningKey, x509 } from './x509.js';

let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let siteCertPem: string;
beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: 'RadFed Federation CA' });
  // Same subject name as the real CA, so only the key and signature tell them apart.
  otherCa = await createCertificateAuthority({ commonName: 'RadFed Federation CA' });
  siteCertPem = (await issueCertificate(ca, { commonName: 'site-1', role: 'site', validityDays: 10 }))
    .certPem;
});

const der = (pem: string): Buffer => new X509Certificate(pem).raw;

function expectUntrusted(run: () => unknown, reason: UntrustedPeerError['reason']): void {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(UntrustedPeerError);
    expect((error as UntrustedPeerError).reason).toBe(reason);
    return;
  }
  expect.fail(`expected UntrustedPeerError(${reason})`);
}

/** Signs a leaf with `ca` directly, to build certificates issueCertificate would never make. */
async function rawLeaf(
  signer: CertificateAuthority,
  subject: x509.JsonName,
  usages: string[],
): Promise<string> {
  const { keys } = await generateTlsKeyPair();
  const caCert = new x509.X509Certificate(signer.certPem);
  const cert = await x509.X509CertificateGenerator.create({
    subject,
    issuer: caCert.subjectName,
    publicKey: keys.publicKey,
    signingKey: await importSigningKey(signer.keyPem),
    signingAlgorithm: ecdsaP256,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    extensions: [
      new x509.ExtendedKeyUsageExtension(usages),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  return cert.toString('pem');
}

describe('identifyPeer', () => {
  it('identifies a certificate from the CA', () => {
    const peer = identifyPeer(der(siteCertPem), ca.certPem);
    expect(peer.commonName).toBe('site-1');
    expect(peer.role).toBe('site');
    expect(peer.fingerprint).toBe(createHash('sha256').update(der(siteCertPem)).digest('hex'));
    expect(peer.notAfter.getTime()).toBe(Date.parse(new X509Certificate(siteCertPem).validTo));
  });

  it('accepts a Uint8Array as well as a Buffer', () => {
    expect(identifyPeer(new Uint8Array(der(siteCertPem)), ca.certPem).role).toBe('site');
  });

  it('rejects a certificate from another CA with the same name', async () => {
    const foreign = await issueCertificate(otherCa, { commonName: 'site-1', role: 'site' });
    expectUntrusted(() => identifyPeer(der(foreign.certPem), ca.certPem), 'wrong-issuer');
  });

  it('rejects a certificate whose issuer matches but whose signature is not the CA', async () => {
    // No authority key identifier, so only the signature check can tell.
    const { keys } = await generateTlsKeyPair();
    const forged = await x509.X509CertificateGenerator.create({
      subject: [{ OU: ['operator'] }, { CN: ['operator'] }],
      issuer: new x509.X509Certificate(ca.certPem).subjectName,
      publicKey: keys.publicKey,
      signingKey: await importSigningKey(otherCa.keyPem),
      signingAlgorithm: ecdsaP256,
      extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
    });
    expectUntrusted(() => identifyPeer(Buffer.from(forged.rawData), ca.certPem), 'bad-signature');
  });

  it('rejects an expired or not yet valid certificate', () => {
    const { notAfter } = identifyPeer(der(siteCertPem), ca.certPem);
    expectUntrusted(
      () => identifyPeer(der(siteCertPem), ca.certPem, new Date(notAfter.getTime() + 1000)),
      'expired',
    );
    expectUntrusted(
      () => identifyPeer(der(siteCertPem), ca.certPem, new Date(Date.now() - 3_600_000)),
      'not-yet-valid',
    );
  });

  it('rejects garbage', () => {
    expectUntrusted(() => identifyPeer(Buffer.from('not a certificate'), ca.certPem), 'malformed');
    expectUntrusted(() => identifyPeer(new Uint8Array(0), ca.certPem), 'malformed');
  });

  it('rejects the CA certificate itself', () => {
    expectUntrusted(() => identifyPeer(der(ca.certPem), ca.certPem), 'ca-certificate');
  });

  it('rejects a CA-signed certificate without exactly one known role', async () => {
    const clientAuth = [x509.ExtendedKeyUsage.clientAuth];
    const subjects: x509.JsonName[] = [
      [{ CN: ['x'] }],
      [{ OU: ['admin'] }, { CN: ['x'] }],
      [{ OU: ['site'] }, { OU: ['operator'] }, { CN: ['x'] }],
    ];
    for (const subject of subjects) {
      const pem = await rawLeaf(ca, subject, clientAuth);
      expectUntrusted(() => identifyPeer(der(pem), ca.certPem), 'unknown-role');
    }
  });

  it('rejects a role whose key usage does not match', async () => {
    const pem = await rawLeaf(
      ca,
      [{ OU: ['operator'] }, { CN: ['operator'] }],
      [x509.ExtendedKeyUsage.serverAuth],
    );
    expectUntrusted(() => identifyPeer(der(pem), ca.certPem), 'wrong-key-usage');
  });
});

describe('fingerprint', () => {
  it('gives the same SHA-256 hex for PEM and DER', () => {
    const hex = fingerprint(siteCertPem);
    expect(hex).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprint(der(siteCertPem))).toBe(hex);
  });
});
