import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
} from 'node:crypto';
import { InvalidKeyError, KeyUnwrapError } from '../errors.js';
import { exportRawPublicKey, importRawPublicKey, loadPrivateKey } from './signing.js';

/** An X25519 key-wrap key pair: the 32-byte raw public key and the PKCS#8 PEM private key. */
export interface KeyWrapKeyPair {
  /** 32 bytes; published at enrolment so others can wrap secrets for this holder. */
  publicKeyRaw: Buffer;
  /** PKCS#8 PEM; never leaves its holder. */
  privateKeyPem: string;
}

/** A secret wrapped for one recipient. */
export interface WrappedKey {
  /** The sender's one-time X25519 public key, 32 bytes. */
  ephemeralPublicKey: Buffer;
  /** AES-GCM nonce, 12 bytes. */
  nonce: Buffer;
  /** AES-256-GCM ciphertext followed by its 16-byte tag. */
  ciphertext: Buffer;
}

// Versioned so a future scheme can never derive the same key from the same inputs.
const INFO_PREFIX = 'radfed/key-wrap/v1\0';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** Generates an X25519 key pair for receiving wrapped secrets (e.g. the federation's HE secret key). */
export function generateKeyWrapKeyPair(): KeyWrapKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return {
    publicKeyRaw: exportRawPublicKey(publicKey),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/**
 * Encrypts `secret` so that only the holder of the X25519 private key for `recipientPublicRaw` can
 * recover it: ephemeral X25519 ECDH, HKDF-SHA256 (salt = ephemeral || recipient public key, info =
 * `radfed/key-wrap/v1\0` || SHA-256(`context`)), then AES-256-GCM with `context` as associated data.
 *
 * Security: the relaying coordinator sees only the result, which reveals nothing about `secret` but its
 * length. `context` (e.g. federation id and purpose) binds the wrap to its use: unwrapping under any
 * other context fails, so a wrapped key cannot be replayed into another federation.
 *
 * @throws InvalidKeyError when `recipientPublicRaw` is not a usable X25519 public key.
 */
export function wrapKey(recipientPublicRaw: Uint8Array, secret: Uint8Array, context: string): WrappedKey {
  const recipient = importRawPublicKey(recipientPublicRaw, 'X25519');
  const ephemeral = generateKeyPairSync('x25519');
  const ephemeralPublicKey = exportRawPublicKey(ephemeral.publicKey);
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient });
  } catch (cause) {
    // OpenSSL refuses low-order points, whose shared secret would be all zeros.
    throw new InvalidKeyError('the recipient X25519 public key is not usable', { cause });
  }
  const key = deriveKey(shared, ephemeralPublicKey, Buffer.from(recipientPublicRaw), context);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(secret), cipher.final(), cipher.getAuthTag()]);
  return { ephemeralPublicKey, nonce, ciphertext };
}

/**
 * Recovers a secret wrapped by {@link wrapKey} with the recipient's X25519 private key (PKCS#8 PEM).
 *
 * @throws KeyUnwrapError when the private key is not the recipient's, the context differs, or any
 *   part of `wrapped` was altered; the message does not say which, by design.
 * @throws InvalidKeyError when the private key is not a PEM X25519 key.
 */
export function unwrapKey(
  recipientPrivateKeyPem: string,
  wrapped: Readonly<Record<keyof WrappedKey, Uint8Array>>,
  context: string,
): Buffer {
  const privateKey = loadPrivateKey(recipientPrivateKeyPem, 'x25519');
  const recipientPublicRaw = exportRawPublicKey(createPublicKey(privateKey));
  // Accept plain Uint8Arrays too: decoded protobuf bytes fields need not be Buffers.
  const ephemeralPublicKey = Buffer.from(wrapped.ephemeralPublicKey);
  const nonce = Buffer.from(wrapped.nonce);
  const ciphertext = Buffer.from(wrapped.ciphertext);
  if (nonce.length !== NONCE_BYTES || ciphertext.length < TAG_BYTES) {
    throw new KeyUnwrapError('the wrapped key is malformed');
  }
  try {
    const ephemeral = importRawPublicKey(ephemeralPublicKey, 'X25519');
    const shared = diffieHellman({ privateKey, publicKey: ephemeral });
    const key = deriveKey(shared, ephemeralPublicKey, recipientPublicRaw, context);
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_BYTES));
    return Buffer.concat([
      decipher.update(ciphertext.subarray(0, ciphertext.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch (cause) {
    throw new KeyUnwrapError('the wrapped key could not be unwrapped with this key and context', { cause });
  }
}

/** The 32-byte raw public key of an X25519 private key (PKCS#8 PEM), e.g. one reloaded from disk. */
export function keyWrapPublicKey(privateKeyPem: string): Buffer {
  return exportRawPublicKey(createPublicKey(loadPrivateKey(privateKeyPem, 'x25519')));
}

function deriveKey(
  shared: Buffer,
  ephemeralPublic: Buffer,
  recipientPublic: Buffer,
  context: string,
): Buffer {
  const salt = Buffer.concat([ephemeralPublic, recipientPublic]);
  // HKDF info is capped at 1024 bytes, so a context of any length enters through its digest; the
  // AEAD additional data carries it in full.
  const info = Buffer.concat([
    Buffer.from(INFO_PREFIX, 'utf8'),
    createHash('sha256').update(context, 'utf8').digest(),
  ]);
  return Buffer.from(hkdfSync('sha256', shared, salt, info, KEY_BYTES));
}
