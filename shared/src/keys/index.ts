/**
 * Application-level keys, node:crypto only: Ed25519 signatures over records, and X25519 + HKDF +
 * AES-256-GCM key wrapping for handing a secret to one recipient through an untrusted relay.
 */
export {
  generateKeyWrapKeyPair,
  type KeyWrapKeyPair,
  keyWrapPublicKey,
  unwrapKey,
  type WrappedKey,
  wrapKey,
} from './key-wrap.js';
export { generateSigningKeyPair, type SigningKeyPair, sign, signingPublicKey, verify } from './signing.js';
