import { and, asc, eq, inArray, isNotNull, lte, max } from 'drizzle-orm';
import { IllegalTransitionError } from '../../errors.js';
import { type ParticipationState, participationSourcesOf, type RoundState } from '../../rounds/states.js';
import type { Executor } from '../client.js';
import { participants, rounds, uploads } from '../schema.js';

export type RoundRow = typeof rounds.$inferSelect;
export type ParticipantRow = typeof participants.$inferSelect;
export type UploadRow = typeof uploads.$inferSelect;

export async function insertRounds(ex: Executor, rows: (typeof rounds.$inferInsert)[]): Promise<RoundRow[]> {
  if (rows.length === 0) return [];
  return ex.insert(rounds).values(rows).returning();
}

export async function lastRoundNumber(ex: Executor, federationId: string): Promise<number> {
  const [row] = await ex
    .select({ n: max(rounds.number) })
    .from(rounds)
    .where(eq(rounds.federationId, federationId));
  return row?.n ?? 0;
}

export async function getRound(ex: Executor, id: string): Promise<RoundRow | undefined> {
  const [row] = await ex.select().from(rounds).where(eq(rounds.id, id));
  return row;
}

export async function listRounds(ex: Executor, federationId: string): Promise<RoundRow[]> {
  return ex.select().from(rounds).where(eq(rounds.federationId, federationId)).orderBy(asc(rounds.number));
}

export async function listRoundsInStates(ex: Executor, states: RoundState[]): Promise<RoundRow[]> {
  return ex.select().from(rounds).where(inArray(rounds.state, states)).orderBy(asc(rounds.number));
}

/** Open rounds whose deadline is at or before `now`. */
export async function listExpiredOpenRounds(ex: Executor, now: Date): Promise<RoundRow[]> {
  return ex
    .select()
    .from(rounds)
    .where(and(eq(rounds.state, 'open'), lte(rounds.deadlineAt, now)));
}

/**
 * Compare-and-set on a round's state: applies `patch` only when the round is still in one of `from`.
 * Returns the updated row, or undefined when the round had moved on (the caller lost a race).
 */
export async function updateRoundState(
  ex: Executor,
  id: string,
  from: RoundState[],
  to: RoundState,
  patch: Partial<typeof rounds.$inferInsert>,
): Promise<RoundRow | undefined> {
  const [row] = await ex
    .update(rounds)
    .set({ ...patch, state: to, updatedAt: new Date() })
    .where(and(eq(rounds.id, id), inArray(rounds.state, from)))
    .returning();
  return row;
}

export async function updateRound(
  ex: Executor,
  id: string,
  patch: Partial<typeof rounds.$inferInsert>,
): Promise<RoundRow | undefined> {
  const [row] = await ex
    .update(rounds)
    .set({ ...patch, updatedAt: new Date() })
    .where(eq(rounds.id, id))
    .returning();
  return row;
}

export async function insertParticipants(ex: Executor, roundId: string, siteIds: string[]): Promise<void> {
  if (siteIds.length === 0) return;
  await ex
    .insert(participants)
    .values(siteIds.map((siteId) => ({ roundId, siteId, state: 'invited' as const })));
}

export async function listParticipants(ex: Executor, roundId: string): Promise<ParticipantRow[]> {
  return ex.select().from(participants).where(eq(participants.roundId, roundId)).orderBy(participants.siteId);
}

export async function listParticipantsFor(ex: Executor, roundIds: string[]): Promise<ParticipantRow[]> {
  if (roundIds.length === 0) return [];
  return ex.select().from(participants).where(inArray(participants.roundId, roundIds));
}

export async function getParticipant(
  ex: Executor,
  roundId: string,
  siteId: string,
): Promise<ParticipantRow | undefined> {
  const [row] = await ex
    .select()
    .from(participants)
    .where(and(eq(participants.roundId, roundId), eq(participants.siteId, siteId)));
  return row;
}

/**
 * The one way participations change state: a compare-and-set from the states the participation
 * state machine (rounds/states.ts) allows into `to`, for one site of the round or, with `siteId`
 * undefined, for all of them. Returns the rows that moved; a row in any other state is left as it is.
 * @throws IllegalTransitionError when no state may move into `to` (participants start `invited` by insert).
 */
export async function transitionParticipants(
  ex: Executor,
  roundId: string,
  siteId: string | undefined,
  to: ParticipationState,
  patch: Partial<typeof participants.$inferInsert>,
): Promise<ParticipantRow[]> {
  const from = participationSourcesOf(to);
  if (from.length === 0) {
    throw new IllegalTransitionError(`no participation may move into ${to}; participants start invited`);
  }
  return ex
    .update(participants)
    .set({ ...patch, state: to, updatedAt: new Date() })
    .where(
      and(
        eq(participants.roundId, roundId),
        siteId === undefined ? undefined : eq(participants.siteId, siteId),
        inArray(participants.state, from),
      ),
    )
    .returning();
}

/** Moves a participant out of `invited` (see {@link transitionParticipants}); false when it had already answered. */
export async function answerParticipant(
  ex: Executor,
  roundId: string,
  siteId: string,
  to: ParticipationState,
  patch: Partial<typeof participants.$inferInsert>,
): Promise<boolean> {
  return (await transitionParticipants(ex, roundId, siteId, to, patch)).length === 1;
}

/** Keeps the coordinator's receipt signature (base64) on an accepted participant. */
export async function setReceiptSignature(
  ex: Executor,
  roundId: string,
  siteId: string,
  signature: string,
): Promise<void> {
  await ex
    .update(participants)
    .set({ receiptSignature: signature })
    .where(and(eq(participants.roundId, roundId), eq(participants.siteId, siteId)));
}

/**
 * Clears the update blob keys of a round's participants (retention) and returns what was cleared,
 * only the rows this call changed, so concurrent pruners never both report the same update.
 */
export async function forgetUpdateKeys(
  ex: Executor,
  roundId: string,
): Promise<{ siteId: string; updateKey: string }[]> {
  const before = await ex
    .select({ siteId: participants.siteId, updateKey: participants.updateKey })
    .from(participants)
    .where(and(eq(participants.roundId, roundId), isNotNull(participants.updateKey)))
    .for('update');
  if (before.length === 0) return [];
  await ex
    .update(participants)
    .set({ updateKey: null })
    .where(and(eq(participants.roundId, roundId), isNotNull(participants.updateKey)));
  return before.map((r) => ({ siteId: r.siteId, updateKey: r.updateKey! }));
}

/** Marks every still-invited participant of a closing round as missed (see {@link transitionParticipants}). */
export async function markMissed(ex: Executor, roundId: string): Promise<void> {
  await transitionParticipants(ex, roundId, undefined, 'missed', {});
}

/** Open rounds in which this site is still expected to submit. */
export async function listPendingTasks(ex: Executor, siteId: string): Promise<RoundRow[]> {
  const rows = await ex
    .select({ round: rounds })
    .from(rounds)
    .innerJoin(participants, eq(participants.roundId, rounds.id))
    .where(and(eq(participants.siteId, siteId), eq(participants.state, 'invited'), eq(rounds.state, 'open')))
    .orderBy(asc(rounds.number));
  return rows.map((r) => r.round);
}

export async function getUpload(
  ex: Executor,
  roundId: string,
  siteId: string,
): Promise<UploadRow | undefined> {
  const [row] = await ex
    .select()
    .from(uploads)
    .where(and(eq(uploads.roundId, roundId), eq(uploads.siteId, siteId)));
  return row;
}

export async function upsertUpload(ex: Executor, row: typeof uploads.$inferInsert): Promise<void> {
  await ex
    .insert(uploads)
    .values(row)
    .onConflictDoUpdate({
      target: [uploads.roundId, uploads.siteId],
      set: {
        stagingKey: row.stagingKey,
        totalBytes: row.totalBytes,
        digest: row.digest,
        receivedBytes: row.receivedBytes ?? 0,
        updatedAt: new Date(),
      },
    });
}

export async function setUploadReceived(
  ex: Executor,
  roundId: string,
  siteId: string,
  received: number,
): Promise<void> {
  await ex
    .update(uploads)
    .set({ receivedBytes: received, updatedAt: new Date() })
    .where(and(eq(uploads.roundId, roundId), eq(uploads.siteId, siteId)));
}

export async function deleteUpload(ex: Executor, roundId: string, siteId: string): Promise<void> {
  await ex.delete(uploads).where(and(eq(uploads.roundId, roundId), eq(uploads.siteId, siteId)));
}
