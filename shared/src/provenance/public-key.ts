import { createPublicKey } from 'node:crypto';
import { InvalidKeyError } from '../errors.js';
import { exportRawPublicKey, importRawPublicKey } from '../keys/signing.js';

/** An Ed25519 raw public key (32 bytes) as SPKI PEM, the form ListCertificates publishes. */
export function signingPublicKeyPem(publicKeyRaw: Uint8Array): string {
  return importRawPublicKey(publicKeyRaw, 'Ed25519').export({ type: 'spki', format: 'pem' }).toString();
}

/**
 * The raw 32 bytes of an Ed25519 public key given as SPKI PEM, or as base64 of the raw key.
 * @throws InvalidKeyError when it is neither.
 */
export function parseSigningPublicKey(text: string): Buffer {
  const trimmed = text.trim();
  if (!trimmed.startsWith('-----BEGIN')) {
    const raw = Buffer.from(trimmed, 'base64');
    importRawPublicKey(raw, 'Ed25519');
    return raw;
  }
  let key: ReturnType<typeof createPublicKey>;
  try {
    key = createPublicKey(trimmed);
  } catch (cause) {
    throw new InvalidKeyError('not a PEM public key', { cause });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new InvalidKeyError(`expected an Ed25519 public key, got ${key.asymmetricKeyType ?? 'unknown'}`);
  }
  return exportRawPublicKey(key);
}
