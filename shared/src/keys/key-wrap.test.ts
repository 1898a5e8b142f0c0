import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InvalidKeyError, KeyUnwrapError } from '../errors.js';
import { generateKeyWrapKeyPair, keyWrapPublicKey, unwrapKey, type WrappedKey, wrapKey } from './key-wrap.js';
import { generateSigningKeyPair } from './signing.js';

describe('X25519 key wrapping', () => {
  const recipient = generateKeyWrapKeyPair();
  const secret = randomBytes(64);
  const context = 'radfed/he-secret-key/federation-1';

  it('round-trips a secret for its recipient', () => {
    const wrapped = wrapKey(recipient.publicKeyRaw, secret, context);
    expect(wrapped.ephemeralPublicKey).toHaveLength(32);
    expect(wrapped.nonce).toHaveLength(12);
    expect(wrapped.ciphertext).toHaveLength(secret.length + 16);
    expect(unwrapKey(recipient.privateKeyPem, wrapped, context).equals(secret)).toBe(true);
  });

  it('uses a fresh ephemeral key and nonce each time', () => {
    const a = wrapKey(recipient.publicKeyRaw, secret, context);
    const b = wrapKey(recipient.publicKeyRaw, secret, context);
    expect(a.ephemeralPublicKey.equals(b.ephemeralPublicKey)).toBe(false);
    expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
  });

  it('accepts plain Uint8Arrays, as decoded protobuf bytes may be', () => {
    const wrapped = wrapKey(recipient.publicKeyRaw, secret, context);
    const plain = {
      ephemeralPublicKey: new Uint8Array(wrapped.ephemeralPublicKey),
      nonce: new Uint8Array(wrapped.nonce),
      ciphertext: new Uint8Array(wrapped.ciphertext),
    };
    expect(unwrapKey(recipient.privateKeyPem, plain, context).equals(secret)).toBe(true);
  });

  it('handles contexts longer than the HKDF info limit', () => {
    const long = 'x'.repeat(5000);
    expect(
      unwrapKey(recipient.privateKeyPem, wrapKey(recipient.publicKeyRaw, secret, long), long).equals(secret),
    ).toBe(true);
  });

  const flip = (buf: Buffer, at: number): Buffer => {
    const copy = Buffer.from(buf);
    copy[at] = (copy[at] ?? 0) ^ 0x01;
    return copy;
  };
  const tampered: [string, (w: WrappedKey) => WrappedKey][] = [
    ['ciphertext', (w) => ({ ...w, ciphertext: flip(w.ciphertext, 0) })],
    ['tag', (w) => ({ ...w, ciphertext: flip(w.ciphertext, w.ciphertext.length - 1) })],
    ['nonce', (w) => ({ ...w, nonce: flip(w.nonce, 0) })],
    ['ephemeral key', (w) => ({ ...w, ephemeralPublicKey: flip(w.ephemeralPublicKey, 0) })],
    ['truncated ciphertext', (w) => ({ ...w, ciphertext: w.ciphertext.subarray(0, 10) })],
  ];
  it.each(tampered)('detects a tampered %s', (_, tamper) => {
    const wrapped = tamper(wrapKey(recipient.publicKeyRaw, secret, context));
    expect(() => unwrapKey(recipient.privateKeyPem, wrapped, context)).toThrow(KeyUnwrapError);
  });

  it('fails under another context or another recipient key', () => {
    const wrapped = wrapKey(recipient.publicKeyRaw, secret, context);
    expect(() => unwrapKey(recipient.privateKeyPem, wrapped, `${context}-other`)).toThrow(KeyUnwrapError);
    expect(() => unwrapKey(generateKeyWrapKeyPair().privateKeyPem, wrapped, context)).toThrow(KeyUnwrapError);
  });

  it('recovers the public key and refuses keys of the wrong kind', () => {
    expect(keyWrapPublicKey(recipient.privateKeyPem).equals(recipient.publicKeyRaw)).toBe(true);
    expect(() => wrapKey(Buffer.alloc(16), secret, context)).toThrow(InvalidKeyError);
    // A low-order point would give an all-zero shared secret.
    expect(() => wrapKey(Buffer.alloc(32), secret, context)).toThrow(InvalidKeyError);
    const wrapped = wrapKey(recipient.publicKeyRaw, secret, context);
    expect(() => unwrapKey(generateSigningKeyPair().privateKeyPem, wrapped, context)).toThrow(
      InvalidKeyError,
    );
  });
});
