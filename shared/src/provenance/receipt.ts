import { canonicalJson } from '../canonical/canonical.js';
import { sign, verify } from '../keys/signing.js';

/**
 * The coordinator's acknowledgement of one accepted update. It names the ledger entry that records
 * the update, so a site holding it can later show that entry is in the published ledger (and a
 * coordinator that drops or rewrites it is caught by its own signature).
 */
export interface ReceiptFacts {
  federationId: string;
  roundId: string;
  siteId: string;
  /** Lower-case hex SHA-256 of the accepted update. */
  updateDigest: string;
  /** Index of the `update.accepted` ledger entry that records the update. */
  ledgerIndex: number;
  /** When the update was accepted, ISO 8601 (the ledger entry's time). */
  acceptedAt: string;
}

export const RECEIPT_DOMAIN = 'radfed.receipt.v1';

/** The exact bytes the coordinator signs for a receipt. */
export function receiptMessage(facts: ReceiptFacts): Buffer {
  return Buffer.from(
    canonicalJson({
      domain: RECEIPT_DOMAIN,
      federationId: facts.federationId,
      roundId: facts.roundId,
      siteId: facts.siteId,
      updateDigest: facts.updateDigest.toLowerCase(),
      ledgerIndex: facts.ledgerIndex,
      acceptedAt: facts.acceptedAt,
    }),
    'utf8',
  );
}

/** Signs a receipt with the coordinator's Ed25519 key (PKCS#8 PEM). */
export function signReceipt(coordinatorKeyPem: string, facts: ReceiptFacts): Buffer {
  return sign(coordinatorKeyPem, receiptMessage(facts));
}

/** True when `signature` is the coordinator's (raw 32-byte Ed25519 key) over exactly these facts. */
export function verifyReceipt(
  coordinatorKey: Uint8Array,
  facts: ReceiptFacts,
  signature: Uint8Array,
): boolean {
  return verify(coordinatorKey, receiptMessage(facts), signature);
}
