import {
  createPrivateKey,
  createPublicKey,
  sign as edSign,
  verify as edVerify,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { InvalidKeyError } from '../errors.js';

/** An Ed25519 signing key pair: the 32-byte raw public key and the PKCS#8 PEM private key. */
export interface SigningKeyPair {
  /** 32 bytes, as published in enrolment and the ledger. */
  publicKeyRaw: Buffer;
  /** PKCS#8 PEM; stays with its owner. */
  privateKeyPem: string;
}

const RAW_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;

/** Generates an Ed25519 key pair for signing updates, receipts and ledger entries. */
export function generateSigningKeyPair(): SigningKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    publicKeyRaw: exportRawPublicKey(publicKey),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/**
 * Signs `message` with an Ed25519 private key (PKCS#8 PEM). Returns the 64-byte signature.
 * Callers sign canonical encodings (see `canonicalJson`) that name what is signed, so a signature over
 * one kind of record cannot be replayed as another.
 *
 * @throws InvalidKeyError when the PEM is not an Ed25519 private key.
 */
export function sign(privateKeyPem: string, message: Uint8Array): Buffer {
  return edSign(null, message, loadPrivateKey(privateKeyPem, 'ed25519'));
}

/**
 * Verifies an Ed25519 signature against a 32-byte raw public key. Returns false for a wrong, malformed
 * or wrong-length signature; never throws for bad signature bytes.
 *
 * @throws InvalidKeyError when `publicKeyRaw` is not 32 bytes or not a valid Ed25519 key.
 */
export function verify(publicKeyRaw: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const publicKey = importRawPublicKey(publicKeyRaw, 'Ed25519');
  if (signature.length !== SIGNATURE_BYTES) return false;
  try {
    return edVerify(null, message, publicKey, signature);
  } catch {
    return false;
  }
}

/** The 32-byte raw public key of an Ed25519 private key (PKCS#8 PEM), e.g. one reloaded from disk. */
export function signingPublicKey(privateKeyPem: string): Buffer {
  return exportRawPublicKey(createPublicKey(loadPrivateKey(privateKeyPem, 'ed25519')));
}

/**
 * Builds a public KeyObject from a raw 32-byte OKP key (Ed25519 or X25519) through its JWK form.
 * @internal shared by the signing and key-wrap modules.
 */
export function importRawPublicKey(raw: Uint8Array, crv: 'Ed25519' | 'X25519'): KeyObject {
  if (raw.length !== RAW_KEY_BYTES) {
    throw new InvalidKeyError(`an ${crv} public key is ${RAW_KEY_BYTES} bytes, got ${raw.length}`);
  }
  try {
    return createPublicKey({
      key: { kty: 'OKP', crv, x: Buffer.from(raw).toString('base64url') },
      format: 'jwk',
    });
  } catch (cause) {
    throw new InvalidKeyError(`not a valid ${crv} public key`, { cause });
  }
}

/** @internal The raw 32 bytes of an OKP public KeyObject. */
export function exportRawPublicKey(publicKey: KeyObject): Buffer {
  const { x } = publicKey.export({ format: 'jwk' });
  if (x === undefined) throw new InvalidKeyError('not an OKP public key');
  return Buffer.from(x, 'base64url');
}

/** @internal Parses a PKCS#8 PEM private key and checks its type. */
export function loadPrivateKey(privateKeyPem: string, type: 'ed25519' | 'x25519'): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch (cause) {
    throw new InvalidKeyError(`not a PEM ${type} private key`, { cause });
  }
  if (key.asymmetricKeyType !== type) {
    throw new InvalidKeyError(`expected an ${type} private key, got ${key.asymmetricKeyType ?? 'unknown'}`);
  }
  return key;
}
