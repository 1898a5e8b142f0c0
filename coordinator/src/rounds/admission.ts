/**
 * The round rules an update must meet, kept in one place: the transport asks them when an upload's
 * header arrives (so a site never streams bytes a round would refuse), and the engine asks them again
 * under the federation lock before it folds the update in (the round may have moved meanwhile).
 *
 * In order: the round exists (in the caller's federation), the site was invited to it, an update
 * already accepted from the site is a duplicate (same digest) or a conflict (another digest), the
 * round is open, the site has not answered otherwise, the update was trained from the round's model
 * version, and its sample count lies within the federation's cap.
 */
import {
  AlreadyAnsweredError,
  InvalidRequestError,
  NotInvitedError,
  RoundClosedError,
  RoundNotFoundError,
  StaleModelError,
} from '../errors.js';
import { type IssuedReceipt, receiptFromEntry } from '../ledger/receipts.js';
import type { Executor } from '../store/client.js';
import type { FederationRow } from '../store/queries/federations.js';
import * as federationQ from '../store/queries/federations.js';
import type { ParticipantRow, RoundRow } from '../store/queries/rounds.js';
import * as roundQ from '../store/queries/rounds.js';

export interface UpdateClaim {
  roundId: string;
  siteId: string;
  /** When set, a round of another federation is reported as not found. */
  federationId?: string;
  /** The global model version the update was trained from. */
  modelVersion: number;
  /** Hex sha256 of the update bytes. */
  digest: string;
  sampleCount: number;
}

export type Admission =
  | { duplicate: false; round: RoundRow; participant: ParticipantRow; federation: FederationRow }
  | {
      /** The same update was accepted before: acknowledge it, count it once. */
      duplicate: true;
      round: RoundRow;
      participant: ParticipantRow;
      /** When the first copy was accepted. */
      acceptedAt: Date;
      /** The receipt issued then, re-read from the ledger. */
      receipt: IssuedReceipt | undefined;
    };

/** Applies the round rules to an update; throws the failure a site can act on, or says how to count it. */
export async function admitUpdate(ex: Executor, claim: UpdateClaim): Promise<Admission> {
  const round = await roundQ.getRound(ex, claim.roundId);
  if (!round || (claim.federationId !== undefined && round.federationId !== claim.federationId)) {
    throw new RoundNotFoundError(claim.roundId);
  }
  const participant = await roundQ.getParticipant(ex, round.id, claim.siteId);
  if (!participant) throw new NotInvitedError(round.number);
  if (participant.state === 'submitted') {
    if (participant.updateDigest === claim.digest) {
      const receipt = await receiptFromEntry(ex, round.federationId, round.id, claim.siteId);
      return {
        duplicate: true,
        round,
        participant,
        acceptedAt: receipt?.acceptedAt ?? participant.updatedAt,
        receipt,
      };
    }
    throw new AlreadyAnsweredError(
      `This site already submitted a different update to round ${round.number}; a round takes one update per site.`,
    );
  }
  if (round.state !== 'open') throw new RoundClosedError(round.number, round.state);
  if (participant.state !== 'invited') {
    throw new AlreadyAnsweredError(`This site already ${participant.state} round ${round.number}.`);
  }
  if (claim.modelVersion !== round.modelVersion) {
    throw new StaleModelError(claim.modelVersion, round.modelVersion ?? 0);
  }
  const federation = (await federationQ.getFederation(ex, round.federationId))!;
  const samples = claim.sampleCount;
  if (!Number.isInteger(samples) || samples < 1 || samples > federation.maxSamplesPerSite) {
    throw new InvalidRequestError(
      `The sample count must be between 1 and ${federation.maxSamplesPerSite} (the federation's cap); got ${samples}.`,
    );
  }
  return { duplicate: false, round, participant, federation };
}
