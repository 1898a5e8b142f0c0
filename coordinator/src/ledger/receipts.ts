import type { Executor } from '../store/client.js';
import * as ledgerQ from '../store/queries/ledger.js';
import type { UpdateAcceptedPayload } from './kinds.js';

/** The coordinator's signed receipt for one accepted update, as returned to the site. */
export interface IssuedReceipt {
  /** Index of the `update.accepted` entry that records the update. */
  ledgerIndex: number;
  acceptedAt: Date;
  /** Ed25519 over the receipt facts ({@link receiptMessage}), base64. */
  signature: string;
}

/**
 * Re-issues the receipt of an update accepted earlier, from its ledger entry: a site that lost the
 * first answer gets the identical receipt again. Undefined when the ledger holds no such entry.
 */
export async function receiptFromEntry(
  ex: Executor,
  federationId: string,
  roundId: string,
  siteId: string,
): Promise<IssuedReceipt | undefined> {
  const row = await ledgerQ.findUpdateAccepted(ex, federationId, roundId, siteId);
  if (!row) return undefined;
  const payload = JSON.parse(row.payload) as UpdateAcceptedPayload;
  return { ledgerIndex: row.index, acceptedAt: row.createdAt, signature: payload.receiptSignature };
}
