import { canonicalJson, sha256, sha256Hex } from '../canonical/canonical.js';
import { sign, verify } from '../keys/signing.js';

/**
 * One entry of a federation's provenance ledger, as stored, served and exported. Entries form a hash
 * chain: each carries its predecessor's digest, and its own digest covers its position, kind, time,
 * that link and (through its SHA-256) the exact payload bytes. The coordinator signs each digest.
 */
export interface LedgerEntryRecord {
  federationId: string;
  /** Position in the federation's chain, from 0. */
  index: number;
  kind: string;
  /** Canonical JSON of the recorded facts, byte-exact as hashed. */
  payload: string;
  /** Lower-case hex digest of the previous entry; {@link GENESIS_DIGEST} for entry 0. */
  previousDigest: string;
  /** Lower-case hex {@link ledgerEntryDigest}. */
  digest: string;
  /** The coordinator's Ed25519 signature over the 32 digest bytes, base64. */
  signature: string;
  /** ISO 8601, millisecond precision. */
  createdAt: string;
}

/** The "previous digest" of a federation's first entry. */
export const GENESIS_DIGEST = '0'.repeat(64);

export const LEDGER_ENTRY_DOMAIN = 'radfed.ledger-entry.v1';

/** The digest an entry must carry: SHA-256 of the canonical JSON of its envelope. */
export function ledgerEntryDigest(entry: Omit<LedgerEntryRecord, 'digest' | 'signature'>): string {
  return sha256Hex(
    canonicalJson({
      domain: LEDGER_ENTRY_DOMAIN,
      federationId: entry.federationId,
      index: entry.index,
      kind: entry.kind,
      createdAt: entry.createdAt,
      previousDigest: entry.previousDigest,
      payloadSha256: sha256Hex(entry.payload),
    }),
  );
}

/** Signs an entry digest (hex) with the coordinator's key (PKCS#8 PEM); returns base64. */
export function signLedgerDigest(coordinatorKeyPem: string, digestHex: string): string {
  return sign(coordinatorKeyPem, Buffer.from(digestHex, 'hex')).toString('base64');
}

/** Where an entry must sit: the federation, its index and its predecessor's digest. */
export interface ChainPosition {
  federationId: string;
  index: number;
  previousDigest: string;
}

/**
 * Checks one entry on its own and against its place in the chain: index, link to its predecessor,
 * canonical payload, digest, and the coordinator's signature. Returns why it fails, or undefined.
 *
 * Security: the signature is checked against the key the caller trusts (pinned or from the export);
 * a chain re-signed with any other key fails here, at the first entry it touched.
 */
export function checkLedgerEntry(
  entry: LedgerEntryRecord,
  expected: ChainPosition,
  coordinatorKey: Uint8Array,
): string | undefined {
  if (entry.federationId !== expected.federationId) {
    return `belongs to federation ${entry.federationId}, not ${expected.federationId}`;
  }
  if (entry.index !== expected.index) {
    return entry.index > expected.index
      ? `entry ${expected.index} is missing (found ${entry.index} where ${expected.index} belongs)`
      : `is out of order (index ${entry.index} where ${expected.index} belongs)`;
  }
  if (entry.previousDigest !== expected.previousDigest) {
    return `does not link to the entry before it (previous digest ${short(entry.previousDigest)}, expected ${short(expected.previousDigest)})`;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(entry.payload);
  } catch {
    return 'has a payload that is not JSON';
  }
  if (canonicalJson(parsed) !== entry.payload) return 'has a payload that is not in canonical form';
  const digest = ledgerEntryDigest(entry);
  if (digest !== entry.digest) {
    return `does not match its digest (recomputed ${short(digest)}, recorded ${short(entry.digest)}): its contents were changed`;
  }
  const signature = Buffer.from(entry.signature, 'base64');
  if (!verify(coordinatorKey, Buffer.from(entry.digest, 'hex'), signature)) {
    return "is not signed by the coordinator's ledger key";
  }
  return undefined;
}

/** SHA-256 of the raw 32-byte coordinator key, hex: what auditors compare out of band. */
export function keyFingerprint(publicKeyRaw: Uint8Array): string {
  return sha256(publicKeyRaw).toString('hex');
}

function short(hex: string): string {
  return hex.length > 16 ? `${hex.slice(0, 16)}…` : hex;
}
