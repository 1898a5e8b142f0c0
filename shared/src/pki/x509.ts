// @peculiar/x509 resolves its algorithms through tsyringe, which throws at load time unless a Reflect
// metadata polyfill is already installed, so this import must stay first. Every other module in pki/
// imports x509 through this file rather than directly.
import 'reflect-metadata';
import { createPublicKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// Node's webcrypto is the WebCrypto the library expects; its DOM type is not in scope under `types: [node]`.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { webcrypto, x509 };

/** The only key algorithm RadFed uses for TLS: ECDSA over P-256, signing with SHA-256. */
export const ecdsaP256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A generated TLS key pair; `privateKeyPem` is PKCS#8. */
export interface GeneratedKeyPair {
  keys: webcrypto.CryptoKeyPair;
  privateKeyPem: string;
}

/** Generates an extractable ECDSA P-256 key pair and its PKCS#8 PEM. */
export async function generateTlsKeyPair(): Promise<GeneratedKeyPair> {
  const keys = (await webcrypto.subtle.generateKey(ecdsaP256, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { keys, privateKeyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') };
}

/** Imports a PKCS#8 PEM ECDSA P-256 private key for signing; the key is not extractable once imported. */
export async function importSigningKey(privateKeyPem: string): Promise<webcrypto.CryptoKey> {
  const der = x509.PemConverter.decodeFirst(privateKeyPem);
  return webcrypto.subtle.importKey('pkcs8', der, ecdsaP256, false, ['sign']);
}

/** True when `publicKey` is an EC key on P-256 (OpenSSL's `prime256v1`); false for any other key or curve. */
export function isP256PublicKey(publicKey: x509.PublicKey): boolean {
  try {
    const key = createPublicKey({ key: Buffer.from(publicKey.rawData), format: 'der', type: 'spki' });
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  } catch {
    return false;
  }
}
