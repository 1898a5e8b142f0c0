import { describe, expect, it } from 'vitest';
import { InvalidKeyError } from '../errors.js';
import { generateSigningKeyPair, sign, signingPublicKey, verify } from './signing.js';

describe('Ed25519 signing', () => {
  const { publicKeyRaw, privateKeyPem } = generateSigningKeyPair();
  const message = Buffer.from('round 7 update digest');

  it('produces 32-byte public keys and 64-byte signatures that verify', () => {
    expect(publicKeyRaw).toHaveLength(32);
    const signature = sign(privateKeyPem, message);
    expect(signature).toHaveLength(64);
    expect(verify(publicKeyRaw, message, signature)).toBe(true);
    expect(verify(new Uint8Array(publicKeyRaw), new Uint8Array(message), new Uint8Array(signature))).toBe(
      true,
    );
  });

  it('rejects a changed message, a changed signature and another key', () => {
    const signature = sign(privateKeyPem, message);
    expect(verify(publicKeyRaw, Buffer.from('round 8 update digest'), signature)).toBe(false);
    const flipped = Buffer.from(signature);
    flipped[5] = (flipped[5] ?? 0) ^ 1;
    expect(verify(publicKeyRaw, message, flipped)).toBe(false);
    expect(verify(publicKeyRaw, message, signature.subarray(0, 63))).toBe(false);
    expect(verify(generateSigningKeyPair().publicKeyRaw, message, signature)).toBe(false);
  });

  it('recovers the public key from the private key', () => {
    expect(signingPublicKey(privateKeyPem).equals(publicKeyRaw)).toBe(true);
  });

  it('refuses malformed keys with InvalidKeyError', () => {
    expect(() => verify(Buffer.alloc(31), message, Buffer.alloc(64))).toThrow(InvalidKeyError);
    expect(() => sign('not a key', message)).toThrow(InvalidKeyError);
  });
});
