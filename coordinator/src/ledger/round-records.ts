import { merkleRoot } from '@radfed/shared';
import { assertNever } from '../rounds/states.js';
import type { Executor } from '../store/client.js';
import type { RoundRow } from '../store/queries/rounds.js';
import * as roundQ from '../store/queries/rounds.js';
import type { Ledger } from './ledger.js';
import type { IssuedReceipt } from './receipts.js';

/** One accepted update, as the round engine records it. */
export interface AcceptedUpdate {
  siteId: string;
  modelVersion: number;
  /** Hex SHA-256 of the update bytes. */
  digest: string;
  updateBytes: number;
  sampleCount: number;
  metrics: Record<string, number>;
  provenance?: { datasetCommitment: string; siteSignature: string } | undefined;
}

/**
 * Appends the ledger entry for a round's new state, in the transaction that made the change:
 * `round.opened` (invited sites), `round.sealed` (included sites, Merkle root of their update
 * digests in site-id order, aggregate digest, new version), `round.failed` / `round.cancelled`.
 * Scheduling and the transient `sealing` state record nothing: the ledger holds what auditors check.
 */
export async function recordRoundState(ledger: Ledger, tx: Executor, row: RoundRow): Promise<void> {
  const base = { roundId: row.id, number: row.number };
  switch (row.state) {
    case 'scheduled':
    case 'sealing':
      return;
    case 'open': {
      const parts = await roundQ.listParticipants(tx, row.id);
      await ledger.append(tx, row.federationId, 'round.opened', {
        ...base,
        modelVersion: row.modelVersion ?? 0,
        invitedSiteIds: parts.map((p) => p.siteId).sort(),
        deadlineAt: (row.deadlineAt ?? new Date(0)).toISOString(),
      });
      return;
    }
    case 'sealed': {
      const included = (await roundQ.listParticipants(tx, row.id))
        .filter((p) => p.state === 'submitted')
        .sort((a, b) => (a.siteId < b.siteId ? -1 : a.siteId > b.siteId ? 1 : 0));
      await ledger.append(tx, row.federationId, 'round.sealed', {
        ...base,
        modelVersion: row.modelVersion ?? 0,
        resultModelVersion: row.resultModelVersion ?? 0,
        includedSiteIds: included.map((p) => p.siteId),
        updatesMerkleRoot: merkleRoot(included.map((p) => Buffer.from(p.updateDigest ?? '', 'hex'))).toString(
          'hex',
        ),
        aggregateDigest: row.aggregateDigest ?? '',
        totalSamples: row.totalSamples,
      });
      return;
    }
    case 'failed':
    case 'cancelled':
      await ledger.append(tx, row.federationId, `round.${row.state}`, {
        ...base,
        reason: row.failureReason ?? '',
      });
      return;
    default:
      return assertNever(row.state);
  }
}

/**
 * Appends `update.accepted` with both signatures: the site's (as submitted) and the coordinator's
 * over the receipt naming this very entry, which is then also kept on the participant row.
 */
export async function recordAcceptedUpdate(
  ledger: Ledger,
  tx: Executor,
  round: RoundRow,
  update: AcceptedUpdate,
  encoding: string,
): Promise<IssuedReceipt> {
  let receipt: IssuedReceipt | undefined;
  await ledger.append(tx, round.federationId, 'update.accepted', (slot) => {
    const signature = ledger.signReceipt({
      federationId: round.federationId,
      roundId: round.id,
      siteId: update.siteId,
      updateDigest: update.digest,
      ledgerIndex: slot.index,
      acceptedAt: slot.at.toISOString(),
    });
    receipt = { ledgerIndex: slot.index, acceptedAt: slot.at, signature };
    return {
      roundId: round.id,
      roundNumber: round.number,
      siteId: update.siteId,
      modelVersion: update.modelVersion,
      updateDigest: update.digest,
      updateBytes: update.updateBytes,
      encoding,
      sampleCount: update.sampleCount,
      datasetCommitment: update.provenance?.datasetCommitment ?? '',
      metrics: update.metrics,
      siteSignature: update.provenance?.siteSignature ?? '',
      receiptSignature: signature,
    };
  });
  await roundQ.setReceiptSignature(tx, round.id, update.siteId, receipt!.signature);
  return receipt!;
}
