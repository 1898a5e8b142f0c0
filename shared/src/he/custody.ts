/**
 * What key custody signs. The key custodian signs the bundle statement (which key, for which
 * federation and preset); every site that wraps the secret key for another signs the wrap statement.
 * Both are canonical JSON naming their kind, so a signature over one can never pass for the other,
 * and the coordinator (which relays both) cannot alter either unnoticed.
 */
import { canonicalJson, sha256Hex } from '../canonical/canonical.js';

/** What the custodian signs when it publishes a federation's HE key. */
export interface KeyBundleClaim {
  federationId: string;
  custodianSiteId: string;
  presetHash: string;
  keyId: string;
}

/** What a key holder signs when it wraps the secret key for one site. */
export interface KeyWrapClaim {
  federationId: string;
  keyId: string;
  siteId: string;
  wrappedBySiteId: string;
  ephemeralPublicKey: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

/** The bytes the custodian signs (Ed25519) over a key bundle. */
export function keyBundleStatement(c: KeyBundleClaim): Buffer {
  return Buffer.from(canonicalJson({ kind: 'radfed.he-key-bundle/v1', ...c }), 'utf8');
}

/** The bytes a key holder signs (Ed25519) over one wrapped key. */
export function keyWrapStatement(c: KeyWrapClaim): Buffer {
  return Buffer.from(
    canonicalJson({
      kind: 'radfed.he-key-wrap/v1',
      federationId: c.federationId,
      keyId: c.keyId,
      siteId: c.siteId,
      wrappedBySiteId: c.wrappedBySiteId,
      wrapDigest: sha256Hex(Buffer.concat([c.ephemeralPublicKey, c.nonce, c.ciphertext])),
    }),
    'utf8',
  );
}

/**
 * The key-wrap context (AEAD associated data) for a federation's HE secret key: unwrapping under any
 * other federation or key id fails, so a wrapped key cannot be replayed elsewhere.
 */
export function heKeyWrapContext(federationId: string, keyId: string): string {
  return `radfed/he-secret-key/v1/${federationId}/${keyId}`;
}
