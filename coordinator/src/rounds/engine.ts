import { createHash } from 'node:crypto';
import { isEncrypted, type Logger } from '@radfed/shared';
import type { ByteSource } from '../aggregation/aggregator.js';
import type { AggregatorRegistry } from '../aggregation/registry.js';
import type { BlobStore } from '../blobs/types.js';
import {
  AlreadyAnsweredError,
  BlobNotFoundError,
  ConcurrentChangeError,
  FederationNotFoundError,
  IllegalTransitionError,
  InvalidRequestError,
  NotInvitedError,
  RoundClosedError,
  RoundNotFoundError,
} from '../errors.js';
import { federationHe } from '../federations/spec.js';
import { newId } from '../ids.js';
import type { Ledger } from '../ledger/ledger.js';
import type { IssuedReceipt } from '../ledger/receipts.js';
import { recordAcceptedUpdate, recordRoundState } from '../ledger/round-records.js';
import type { Db, Executor } from '../store/client.js';
import * as federationQ from '../store/queries/federations.js';
import * as keyQ from '../store/queries/keys.js';
import { emit } from '../store/queries/outbox.js';
import type { ParticipantRow, RoundRow } from '../store/queries/rounds.js';
import * as roundQ from '../store/queries/rounds.js';
import * as siteQ from '../store/queries/sites.js';
import { onUniqueViolation, UNIQUE } from '../store/unique-violation.js';
import { admitUpdate } from './admission.js';
import { KeyedMutex } from './keyed-mutex.js';
import { assertNever, canTransition, type RoundState } from './states.js';

export interface RoundEngineOptions {
  db: Db;
  blobs: BlobStore;
  /** Picks each federation's aggregator (plaintext or encrypted) from its HE preset. */
  aggregators: AggregatorRegistry;
  /** Records every round change and accepted update in the federation's signed ledger. */
  ledger: Ledger;
  log: Logger;
  /** Called after every commit that wrote to the outbox (pokes the relay). */
  onCommit?: () => void;
  now?: () => Date;
  /** How often deadlines and scheduled rounds are checked, in ms (default 250). */
  tickMs?: number;
}

export interface SubmitUpdate {
  roundId: string;
  siteId: string;
  modelVersion: number;
  /**
   * The update: `stagedKey` names a blob holding it (SiteService's staged upload, moved into the
   * round once accepted), or `update` holds the bytes (in-process callers). Exactly one is set.
   */
  update?: Uint8Array;
  stagedKey?: string;
  digest: string;
  sampleCount: number;
  metrics: Record<string, number>;
  /**
   * What the site signed over the update, already verified against its enrolled key (SiteService
   * does that before it accepts a byte). Recorded in the ledger; absent only for in-process callers
   * that bypass SiteService, whose updates the ledger then records as unsigned (and audit fails).
   */
  provenance?: SubmittedProvenance;
}

export interface SubmittedProvenance {
  /** Hex Merkle root of the site's training files. */
  datasetCommitment: string;
  /** Canonical JSON the site signed. */
  signedPayload: string;
  /** The site's Ed25519 signature, base64. */
  siteSignature: string;
}

export interface SubmitResult {
  duplicate: boolean;
  acceptedAt: Date;
  round: RoundRow;
  /** The coordinator's signed receipt for the update (re-issued from the ledger for a duplicate). */
  receipt: IssuedReceipt | undefined;
}

/**
 * The round engine: opens scheduled rounds, folds accepted updates into each round's running
 * aggregate, and closes rounds at quorum and deadline. Every state change goes through
 * {@link RoundEngine.transition}, which checks the move, persists it and emits its event in one
 * transaction. Work on one federation is serialised by a per-federation mutex.
 */
export class RoundEngine {
  private readonly locks = new KeyedMutex();
  private readonly now: () => Date;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private readonly waitingLogged = new Set<string>();

  constructor(private readonly opts: RoundEngineOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  get db(): Db {
    return this.opts.db;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.kick(), this.opts.tickMs ?? 250);
    this.kick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
  }

  /** Runs a tick soon unless one is already running. */
  kick(): void {
    if (this.ticking) return;
    this.ticking = this.tick()
      .catch((err: unknown) => this.opts.log.error('round engine tick failed', { err }))
      .finally(() => {
        this.ticking = undefined;
      });
  }

  /** One pass: finish sealing rounds, close expired ones, open the next scheduled round per federation. */
  async tick(): Promise<void> {
    const active = await roundQ.listRoundsInStates(this.db, ['scheduled', 'open', 'sealing']);
    const now = this.now();
    const busy = new Set<string>();
    for (const round of active) {
      if (round.state === 'sealing') {
        busy.add(round.federationId);
        await this.seal(round.id);
      } else if (round.state === 'open') {
        busy.add(round.federationId);
        if (round.deadlineAt && round.deadlineAt <= now) await this.close(round.id, 'deadline');
      }
    }
    const waiting = new Set(active.filter((r) => r.state === 'scheduled').map((r) => r.federationId));
    for (const federationId of waiting) {
      if (!busy.has(federationId)) await this.openNext(federationId);
    }
  }

  /** Appends `count` rounds after the federation's last one; each opens when its predecessor closes. */
  async schedule(federationId: string, count: number): Promise<RoundRow[]> {
    if (!Number.isInteger(count) || count < 1 || count > 1000) {
      throw new InvalidRequestError('Schedule between 1 and 1000 rounds at a time.');
    }
    const scheduling = this.locks.run(federationId, () =>
      this.db.transaction(async (tx) => {
        const fed = await federationQ.getFederation(tx, federationId);
        if (!fed) throw new FederationNotFoundError(federationId);
        const last = await roundQ.lastRoundNumber(tx, federationId);
        const created = await roundQ.insertRounds(
          tx,
          Array.from({ length: count }, (_, i) => ({
            id: newId('rd'),
            federationId,
            number: last + i + 1,
            state: 'scheduled' as const,
          })),
        );
        for (const r of created)
          await emit(tx, 'round.scheduled', { federationId, roundId: r.id, number: r.number });
        return created;
      }),
    );
    // The lock is per process: another replica may number rounds of this federation at the same moment.
    const rows = await scheduling.catch(
      onUniqueViolation(
        UNIQUE.roundNumber,
        (cause) =>
          new ConcurrentChangeError(
            'Another request scheduled rounds of this federation at the same moment; list them with `radfed rounds list` and schedule again if more are needed.',
            { cause },
          ),
      ),
    );
    this.committed();
    this.kick();
    return rows;
  }

  async cancel(roundId: string, reason: string): Promise<RoundRow> {
    const round = await roundQ.getRound(this.db, roundId);
    if (!round) throw new RoundNotFoundError(roundId);
    const updated = await this.locks.run(round.federationId, () =>
      this.db.transaction(async (tx) => {
        const current = await roundQ.getRound(tx, roundId);
        if (!current || (current.state !== 'scheduled' && current.state !== 'open')) {
          throw new RoundClosedError(round.number, current?.state ?? 'gone');
        }
        await roundQ.markMissed(tx, roundId);
        return this.transition(tx, current, 'cancelled', {
          closedAt: this.now(),
          failureReason: reason || 'cancelled by the operator',
        });
      }),
    );
    this.committed();
    this.kick();
    return updated;
  }

  /**
   * Folds one site's update into its round's running aggregate. Idempotent: the same update (same
   * digest) submitted again is acknowledged as a duplicate and counted once.
   */
  async submit(input: SubmitUpdate): Promise<SubmitResult> {
    const round = await roundQ.getRound(this.db, input.roundId);
    if (!round) throw new RoundNotFoundError(input.roundId);
    const result = await this.locks.run(round.federationId, async () => {
      // The round rules, checked again under the lock: the round may have moved since the header.
      const admission = await admitUpdate(this.db, input);
      if (admission.duplicate) {
        const { acceptedAt, round: current, receipt } = admission;
        return { duplicate: true, acceptedAt, round: current, receipt };
      }
      const { round: current, federation: fed } = admission;
      const aggregator = await this.opts.aggregators.forFederation(fed);
      const count = (await roundQ.listParticipants(this.db, current.id)).filter(
        (p) => p.state === 'submitted',
      ).length;
      const sumKey = `rounds/${current.id}/sum-${count + 1}`;
      const updateKey = `rounds/${current.id}/updates/${input.siteId}`;
      const blobs = this.opts.blobs;
      // In-process callers hand over bytes: stored first, then streamed like a staged upload.
      if (input.update) await blobs.put(updateKey, input.update);
      const source = input.stagedKey ?? updateKey;
      const updateBytes = (await blobs.size(source)) ?? 0;
      // Streamed: the sum and the update are read in chunks, checked, added and written to a new
      // sum blob that only appears once complete. Nothing model-sized is held in memory, and if the
      // fold refuses the update the running sum is untouched.
      const digest = createHash('sha256');
      const sum = current.aggregateKey ? await blobSource(blobs, current.aggregateKey) : undefined;
      await blobs.putStream(sumKey, (write) =>
        aggregator.foldStream(
          sum,
          { bytes: updateBytes, readAt: (offset, into) => blobs.readInto(source, offset, into) },
          fed.parameterCount,
          async (chunk) => {
            digest.update(chunk);
            await write(chunk);
          },
        ),
      );
      // Blobs first, rows second: a crash in between leaves unreferenced blobs, never a row
      // pointing at a missing blob, and the update is either fully counted or not at all.
      if (input.stagedKey) await blobs.move(input.stagedKey, updateKey);
      const aggregateDigest = digest.digest('hex');
      const { updated, receipt } = await this.db.transaction(async (tx) => {
        const answered = await roundQ.answerParticipant(tx, current.id, input.siteId, 'submitted', {
          sampleCount: input.sampleCount,
          metrics: input.metrics,
          updateDigest: input.digest,
          updateKey,
          datasetCommitment: input.provenance?.datasetCommitment ?? null,
          signedPayload: input.provenance?.signedPayload ?? null,
          siteSignature: input.provenance?.siteSignature ?? null,
        });
        if (!answered) throw new AlreadyAnsweredError(`This site already answered round ${current.number}.`);
        const row = await roundQ.updateRound(tx, current.id, {
          aggregateKey: sumKey,
          aggregateDigest,
          totalSamples: current.totalSamples + input.sampleCount,
        });
        await emit(tx, 'round.update_accepted', {
          federationId: current.federationId,
          roundId: current.id,
          siteId: input.siteId,
          sampleCount: input.sampleCount,
          digest: input.digest,
        });
        const receipt = await this.recordAccepted(tx, current, input, updateBytes, aggregator.encoding);
        return { updated: row!, receipt };
      });
      if (current.aggregateKey) await this.opts.blobs.delete(current.aggregateKey).catch(() => undefined);
      this.opts.log.info('update accepted', {
        federation_id: current.federationId,
        round_id: current.id,
        site_id: input.siteId,
        samples: input.sampleCount,
      });
      return { duplicate: false, acceptedAt: receipt.acceptedAt, round: updated, receipt };
    });
    this.committed();
    if (!result.duplicate) await this.closeIfAllAnswered(result.round);
    return result;
  }

  /** Records that a site cannot take part in a round, with its reason (shown to the operator). */
  async decline(roundId: string, siteId: string, reason: string): Promise<void> {
    const round = await roundQ.getRound(this.db, roundId);
    if (!round) throw new RoundNotFoundError(roundId);
    await this.locks.run(round.federationId, () =>
      this.db.transaction(async (tx) => {
        const current = (await roundQ.getRound(tx, roundId))!;
        const participant = await roundQ.getParticipant(tx, roundId, siteId);
        if (!participant) throw new NotInvitedError(current.number);
        if (current.state !== 'open') throw new RoundClosedError(current.number, current.state);
        const ok = await roundQ.answerParticipant(tx, roundId, siteId, 'declined', { reason });
        if (!ok)
          throw new AlreadyAnsweredError(`This site already ${participant.state} round ${current.number}.`);
        await emit(tx, 'round.site_declined', {
          federationId: current.federationId,
          roundId,
          siteId,
          reason,
        });
      }),
    );
    this.opts.log.warn('site declined round', {
      federation_id: round.federationId,
      round_id: roundId,
      site_id: siteId,
      reason,
    });
    this.committed();
    await this.closeIfAllAnswered(round);
  }

  private async closeIfAllAnswered(round: RoundRow): Promise<void> {
    const parts = await roundQ.listParticipants(this.db, round.id);
    if (parts.length > 0 && parts.every((p) => p.state !== 'invited'))
      await this.close(round.id, 'all-answered');
  }

  /** Opens the federation's next scheduled round once enough sites are enrolled to reach quorum. */
  private async openNext(federationId: string): Promise<void> {
    const opened = await this.locks.run(federationId, () =>
      this.db.transaction(async (tx) => {
        const rounds = await roundQ.listRounds(tx, federationId);
        if (rounds.some((r) => r.state === 'open' || r.state === 'sealing')) return undefined;
        const next = rounds.find((r) => r.state === 'scheduled');
        if (!next) return undefined;
        const fed = (await federationQ.getFederation(tx, federationId))!;
        const sites = await siteQ.listEnrolledSites(tx, federationId);
        if (sites.length < fed.minSites) {
          if (!this.waitingLogged.has(next.id)) {
            this.waitingLogged.add(next.id);
            this.opts.log.info(
              `round ${next.number} waits for ${fed.minSites} enrolled sites (${sites.length} so far)`,
              { federation_id: federationId, round_id: next.id },
            );
          }
          return undefined;
        }
        // An encrypted round needs the federation's HE keys: until the custodian publishes them no
        // site could encrypt, so the round waits rather than opening to certain failure.
        if (isEncrypted(federationHe(fed).preset) && !(await keyQ.getKeyBundle(tx, federationId))) {
          if (!this.waitingLogged.has(`${next.id}/keys`)) {
            this.waitingLogged.add(`${next.id}/keys`);
            this.opts.log.info(
              `round ${next.number} waits for the key custodian to publish the federation's HE keys`,
              { federation_id: federationId, round_id: next.id },
            );
          }
          return undefined;
        }
        const now = this.now();
        await roundQ.insertParticipants(
          tx,
          next.id,
          sites.map((s) => s.id),
        );
        return this.transition(tx, next, 'open', {
          modelVersion: fed.currentModelVersion,
          openedAt: now,
          deadlineAt: new Date(now.getTime() + fed.roundDeadlineSeconds * 1000),
        });
      }),
    );
    if (opened) {
      this.opts.log.info(`round ${opened.number} opened`, {
        federation_id: federationId,
        round_id: opened.id,
      });
      this.committed();
    }
  }

  /** Closes an open round: seals it at quorum, otherwise fails it with the reason. */
  private async close(roundId: string, why: 'deadline' | 'all-answered'): Promise<void> {
    const round = await roundQ.getRound(this.db, roundId);
    if (!round) return;
    const closed = await this.locks.run(round.federationId, () =>
      this.db.transaction(async (tx) => {
        const current = await roundQ.getRound(tx, roundId);
        if (current?.state !== 'open') return undefined;
        const fed = (await federationQ.getFederation(tx, current.federationId))!;
        const parts = await roundQ.listParticipants(tx, roundId);
        const count = (s: ParticipantRow['state']) => parts.filter((p) => p.state === s).length;
        const submitted = count('submitted');
        await roundQ.markMissed(tx, roundId);
        if (submitted >= fed.minSites) return this.transition(tx, current, 'sealing', {});
        const when = why === 'deadline' ? 'before the deadline' : 'once every invited site had answered';
        const reason =
          `only ${submitted} of the ${fed.minSites} required sites submitted ${when} ` +
          `(${count('declined')} declined, ${count('invited')} silent)`;
        return this.transition(tx, current, 'failed', { closedAt: this.now(), failureReason: reason });
      }),
    );
    if (!closed) return;
    this.committed();
    if (closed.state === 'sealing') await this.seal(closed.id);
    else
      this.opts.log.warn(`round ${closed.number} failed: ${closed.failureReason}`, {
        federation_id: closed.federationId,
        round_id: closed.id,
      });
    this.kick();
  }

  /** Turns a sealing round's aggregate into the next global model version. Safe to repeat after a crash. */
  private async seal(roundId: string): Promise<void> {
    const round = await roundQ.getRound(this.db, roundId);
    if (!round) return;
    const sealed = await this.locks.run(round.federationId, () =>
      this.db.transaction(async (tx) => {
        const current = await roundQ.getRound(tx, roundId);
        if (current?.state !== 'sealing') return undefined;
        const fed = (await federationQ.getFederation(tx, current.federationId))!;
        const parts = (await roundQ.listParticipants(tx, roundId)).filter((p) => p.state === 'submitted');
        const version = fed.currentModelVersion + 1;
        await federationQ.addModelVersion(tx, {
          federationId: fed.id,
          version,
          blobKey: current.aggregateKey,
          digest: current.aggregateDigest,
          totalSamples: current.totalSamples,
          roundId: current.id,
          meanLoss: weightedMeanLoss(parts),
        });
        return this.transition(tx, current, 'sealed', { resultModelVersion: version, closedAt: this.now() });
      }),
    );
    if (sealed) {
      this.opts.log.info(`round ${sealed.number} sealed as model version ${sealed.resultModelVersion}`, {
        federation_id: sealed.federationId,
        round_id: sealed.id,
        sites: sealed.totalSamples,
      });
      this.committed();
      this.kick();
    }
  }

  /**
   * The one way a round changes state: checks the move is allowed, compare-and-sets the row (so a
   * concurrent change wins cleanly), and writes the matching event to the outbox in the same
   * transaction.
   */
  async transition(
    tx: Executor,
    round: RoundRow,
    to: RoundState,
    patch: Partial<RoundRow>,
  ): Promise<RoundRow> {
    if (!canTransition(round.state, to)) {
      throw new IllegalTransitionError(`round ${round.number} cannot go from ${round.state} to ${to}`);
    }
    const row = await roundQ.updateRoundState(tx, round.id, [round.state], to, patch);
    if (!row) {
      throw new ConcurrentChangeError(
        `Round ${round.number} changed state while this request ran; check it with \`radfed rounds list\` and retry if the request still applies.`,
      );
    }
    await this.emitFor(tx, row);
    await this.recordFor(tx, row);
    return row;
  }

  /** Appends the ledger entry for the round's new state (see {@link recordRoundState}). */
  private recordFor(tx: Executor, row: RoundRow): Promise<void> {
    return recordRoundState(this.opts.ledger, tx, row);
  }

  /** Appends `update.accepted` with the site's signature and the receipt's (see {@link recordAcceptedUpdate}). */
  private recordAccepted(
    tx: Executor,
    round: RoundRow,
    input: SubmitUpdate,
    updateBytes: number,
    encoding: string,
  ): Promise<IssuedReceipt> {
    return recordAcceptedUpdate(this.opts.ledger, tx, round, { ...input, updateBytes }, encoding);
  }

  private async emitFor(tx: Executor, row: RoundRow): Promise<void> {
    const base = { federationId: row.federationId, roundId: row.id };
    switch (row.state) {
      case 'scheduled':
        return emit(tx, 'round.scheduled', { ...base, number: row.number });
      case 'open': {
        const parts = await roundQ.listParticipants(tx, row.id);
        return emit(tx, 'round.opened', {
          ...base,
          number: row.number,
          invitedSiteIds: parts.map((p) => p.siteId),
        });
      }
      case 'sealing':
        return emit(tx, 'round.sealing', base);
      case 'sealed': {
        const parts = await roundQ.listParticipants(tx, row.id);
        return emit(tx, 'round.sealed', {
          ...base,
          number: row.number,
          modelVersion: row.resultModelVersion ?? 0,
          includedSiteIds: parts.filter((p) => p.state === 'submitted').map((p) => p.siteId),
          totalSamples: row.totalSamples,
        });
      }
      case 'failed':
        return emit(tx, 'round.failed', { ...base, number: row.number, reason: row.failureReason ?? '' });
      case 'cancelled':
        return emit(tx, 'round.cancelled', { ...base, number: row.number, reason: row.failureReason ?? '' });
      default:
        return assertNever(row.state);
    }
  }

  private committed(): void {
    this.opts.onCommit?.();
  }
}

function weightedMeanLoss(parts: ParticipantRow[]): number | null {
  let num = 0;
  let den = 0;
  for (const p of parts) {
    const loss = p.metrics.loss;
    if (typeof loss === 'number' && Number.isFinite(loss)) {
      num += loss * p.sampleCount;
      den += p.sampleCount;
    }
  }
  return den > 0 ? num / den : null;
}

/** A blob as a ByteSource for a streamed fold. */
async function blobSource(blobs: BlobStore, key: string): Promise<ByteSource> {
  const bytes = await blobs.size(key);
  if (bytes === undefined) throw new BlobNotFoundError(key);
  return { bytes, readAt: (offset, into) => blobs.readInto(key, offset, into) };
}
