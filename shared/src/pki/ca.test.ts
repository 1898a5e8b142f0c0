import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidCertificateOptionsError, InvalidCsrError } from '../errors.js';
import { type CertificateAuthority, createCertificateAuthority, issueCertificate } from './ca.js';
import { createCsr, signCsr } from './csr.js';
import type { Role } from './roles.js';
import { webcrypto, x509 } from './x509.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

let ca: CertificateAuthority;
beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: 'Test CA' });
});

function subjectFields(certPem: string, field: 'CN' | 'OU'): string[] {
  return new x509.X509Certificate(certPem).subjectName.getField(field);
}

describe('createCertificateAuthority', () => {
  it('makes a self-signed P-256 CA limited to signing certificates and CRLs', () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe('CN=Test CA');
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.checkPrivateKey(createPrivateKey(ca.keyPem))).toBe(true);
    const usage = new x509.X509Certificate(ca.certPem).getExtension(x509.KeyUsagesExtension);
    expect(usage?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(usage?.critical).toBe(true);
  });
});

describe('issueCertificate', () => {
  it('issues a coordinator server certificate with SANs and serverAuth', async () => {
    const issued = await issueCertificate(ca, {
      commonName: 'coordinator',
      role: 'coordinator',
      subjectAltNames: { dns: ['localhost', 'coord.example'], ip: ['127.0.0.1', '::1'] },
      validityDays: 30,
    });
    const cert = new X509Certificate(issued.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual([SERVER_AUTH]);
    expect(cert.subjectAltName).toBe(
      'DNS:localhost, DNS:coord.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    expect(subjectFields(issued.certPem, 'OU')).toEqual(['coordinator']);
    expect(cert.checkPrivateKey(createPrivateKey(issued.keyPem))).toBe(true);
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThan(30.1);
  });

  it.each<Role>(['site', 'operator', 'auditor'])('gives %s certificates clientAuth', async (role) => {
    const { certPem } = await issueCertificate(ca, { commonName: `a-${role}`, role });
    expect(new X509Certificate(certPem).keyUsage).toEqual([CLIENT_AUTH]);
    expect(subjectFields(certPem, 'OU')).toEqual([role]);
  });

  it('uses random serial numbers', async () => {
    const a = await issueCertificate(ca, { commonName: 'x', role: 'site' });
    const b = await issueCertificate(ca, { commonName: 'x', role: 'site' });
    expect(new X509Certificate(a.certPem).serialNumber).not.toBe(new X509Certificate(b.certPem).serialNumber);
  });

  it('certifies a given public key and returns no private key', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const issued = await issueCertificate(ca, {
      commonName: 'site-a',
      role: 'site',
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    });
    expect(issued.keyPem).toBeUndefined();
    expect(new X509Certificate(issued.certPem).checkPrivateKey(privateKey)).toBe(true);
  });

  it('keeps a common name that looks like a DN inside the CN', async () => {
    const { certPem } = await issueCertificate(ca, { commonName: 'evil, OU=operator', role: 'site' });
    expect(subjectFields(certPem, 'OU')).toEqual(['site']);
    expect(subjectFields(certPem, 'CN')).toEqual(['evil, OU=operator']);
  });

  it('refuses bad options', async () => {
    const bad = [
      { commonName: '', role: 'site' },
      { commonName: 'x'.repeat(65), role: 'site' },
      { commonName: 'x', role: 'admin' },
      { commonName: 'x', role: 'site', validityDays: 0 },
      { commonName: 'x', role: 'site', subjectAltNames: { ip: ['localhost'] } },
      { commonName: 'x', role: 'site', publicKeyPem: 'nope' },
      {
        commonName: 'x',
        role: 'site',
        publicKeyPem: generateKeyPairSync('ed25519')
          .publicKey.export({ type: 'spki', format: 'pem' })
          .toString(),
      },
    ];
    for (const opts of bad) {
      await expect(issueCertificate(ca, opts as never)).rejects.toThrow(InvalidCertificateOptionsError);
    }
  });
});

describe('createCsr and signCsr', () => {
  it('certifies the site key under the identity the coordinator chooses', async () => {
    const { csrPem, keyPem } = await createCsr({ commonName: 'I am the operator' });
    expect(csrPem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    const certPem = await signCsr(ca, csrPem, { siteId: 'site-7', validityDays: 10 });
    const cert = new X509Certificate(certPem);
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    expect(subjectFields(certPem, 'CN')).toEqual(['site-7']);
    expect(subjectFields(certPem, 'OU')).toEqual(['site']);
    expect(cert.keyUsage).toEqual([CLIENT_AUTH]);
  });

  it('refuses garbage with a readable InvalidCsrError', async () => {
    await expect(signCsr(ca, 'hello', { siteId: 's' })).rejects.toThrow(
      new InvalidCsrError('the CSR is not a PEM-encoded PKCS#10 certificate request'),
    );
    await expect(signCsr(ca, ca.certPem, { siteId: 's' })).rejects.toThrow(InvalidCsrError);
    await expect(signCsr(ca, 'x'.repeat(20_000), { siteId: 's' })).rejects.toThrow(InvalidCsrError);
  });

  it('refuses a CSR whose signature does not match its content', async () => {
    const { csrPem } = await createCsr({ commonName: 'aaaa' });
    const der = Buffer.from(x509.PemConverter.decodeFirst(csrPem));
    const at = der.indexOf('aaaa');
    der[at] = 'b'.charCodeAt(0);
    const forged = x509.PemConverter.encode(der, 'CERTIFICATE REQUEST');
    await expect(signCsr(ca, forged, { siteId: 's' })).rejects.toThrow(/signature does not match/);
  });

  it('refuses a CSR for a key that is not ECDSA P-256', async () => {
    const algorithm = {
      name: 'RSASSA-PKCS1-v1_5',
      hash: 'SHA-256',
      publicExponent: new Uint8Array([1, 0, 1]),
      modulusLength: 2048,
    };
    const keys = (await webcrypto.subtle.generateKey(algorithm, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=rsa',
      keys,
      signingAlgorithm: algorithm,
    });
    await expect(signCsr(ca, csr.toString('pem'), { siteId: 's' })).rejects.toThrow(/P-256/);
  });
});
