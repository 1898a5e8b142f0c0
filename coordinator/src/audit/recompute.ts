import { type ExportBlob, sha256Hex } from '@radfed/shared';
import { UnsupportedEncodingError } from '../errors.js';
import { type AuditAggregator, aggregatorForAudit } from './audit-aggregator.js';
import type { AuditedRound, AuditedUpdate, LedgerAudit } from './ledger-audit.js';
import { type DecodedUpdate, UpdateDecoder } from './update-decoder.js';

/** Updates decoded or folding at once: bounds memory to a few updates while keeping workers busy. */
const FOLDS_IN_FLIGHT = 8;

/** Updates of a round added to its sum in one pass (which serialises the sum once, not per update). */
const FOLD_BATCH = 4;

/**
 * Batches adding to their sums at once. A batch in work on the HE threads needs no more input to
 * finish, so the reader may wait on it without deadlock; without this bound, the decoded updates of
 * rounds waiting to be added pile up (the folds in flight count only those not yet checked), and
 * with them the HE chunk buffers in transit.
 */
const BATCHES_IN_FLIGHT = 2;

/** Whether a sealed round's aggregate was recomputed from its updates, and if not, why. */
export type Recomputed = 'yes' | 'pruned' | 'missing' | 'mismatch' | 'n/a';

/** One sealed round's recomputation, as its updates arrive. */
interface Refold {
  round: AuditedRound;
  /** Update records received so far (in ledger order). */
  received: number;
  /** Updates checked so far (hash, form); checks and folds run behind receipt, in order within a round. */
  checked: number;
  /** Updates folded into `sum` so far. */
  folded: number;
  folding: Promise<void>;
  /** Checked updates waiting to be folded together. */
  batch: { update: AuditedUpdate; decoded: DecodedUpdate }[];
  sum: Uint8Array | undefined;
  /** Sites whose update the export holds as absent, with the coordinator's reason. */
  absent: Map<string, string>;
  /** Set once the outcome is known; `mismatch` also when an update could not be folded. */
  outcome: Recomputed | undefined;
}

/**
 * Step 3 of the verification: recomputes each sealed round's aggregate from the export's update
 * records, checking each against the digest its site signed, and compares it with the digest the
 * round was sealed with. Also checks exported HE public parameters against their key bundle entry.
 *
 * Works on what {@link LedgerAudit} replayed (rounds, accepted updates, key bundles), so the export's
 * blob records are trusted for nothing but their bytes. Folds run behind reading: encrypted folds run
 * on HE worker threads, so while they work this thread reads, hashes and checks the next updates.
 * Memory is bounded by {@link FOLDS_IN_FLIGHT} updates and one running sum per round in flight.
 */
export class Recomputation {
  private readonly refolds = new Map<string, Refold>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly batches = new Set<Promise<void>>();
  /** The federation's aggregator once needed; null when this build cannot recompute its encoding. */
  private aggregator: AuditAggregator | null | undefined;
  private readonly decoder = new UpdateDecoder();

  constructor(private readonly audit: LedgerAudit) {}

  /**
   * Takes one blob record of the export; `dataBytes` is its base64 as bytes when the reader gave it
   * so (see `readAuditExport`): this copies them before it returns its promise (nothing before the
   * copy awaits), so the reader may read over them as soon as the next record is asked for.
   */
  async take(blob: ExportBlob, dataBytes?: Uint8Array): Promise<void> {
    if (blob.role === 'he-public-parameters') {
      this.publicParameters(blob, dataBytes);
      return;
    }
    const update = this.audit.updates.get(blob.entryIndex);
    if (!update) {
      this.audit.fail(
        undefined,
        undefined,
        `the export holds an update for entry #${blob.entryIndex}, which records no accepted update`,
      );
      return;
    }
    await this.update(update, blob, dataBytes ?? blob.data);
  }

  /** Waits for every fold queued. */
  async settle(): Promise<void> {
    await Promise.all([...this.refolds.values()].map((r) => r.folding));
  }

  /**
   * After the last record (and {@link settle}): names each sealed round's update the export leaves
   * out, and each update gone that no retention entry explains.
   */
  finish(): void {
    for (const round of this.audit.roundList) {
      if (round.state !== 'sealed') continue;
      const r = this.refoldOf(round);
      if (r.outcome) continue;
      if (r.received < round.accepted.length) {
        this.fail(
          round.accepted[r.received]!,
          'has no update record in the export (neither the bytes nor why they are absent)',
        );
        r.outcome = 'mismatch';
        continue;
      }
      if (r.absent.size === 0) continue;
      const unexplained = [...r.absent].filter(([siteId]) => !round.pruned?.siteIds.has(siteId));
      if (unexplained.length === 0) {
        r.outcome = 'pruned';
        continue;
      }
      const [siteId, why] = unexplained[0]!;
      this.fail(
        round.accepted.find((u) => u.siteId === siteId)!,
        `its stored update is gone (the coordinator says: ${why}) and no retention entry in the ledger deleted it`,
      );
      r.outcome = 'missing';
    }
  }

  /** What became of a round's aggregate. */
  recomputed(round: AuditedRound): Recomputed {
    if (round.state !== 'sealed') return 'n/a';
    return this.refolds.get(round.roundId)?.outcome ?? 'missing';
  }

  /** Releases the worker threads. */
  async close(): Promise<void> {
    await Promise.all([this.aggregator?.close(), this.decoder.close()]);
  }

  private publicParameters(blob: ExportBlob, dataBytes: Uint8Array | undefined): void {
    const digest = this.audit.keyBundles.get(blob.entryIndex);
    if (digest === undefined) {
      this.audit.fail(
        undefined,
        undefined,
        `the export holds HE parameters for entry #${blob.entryIndex}, which publishes no key bundle`,
      );
      return;
    }
    const base64 = dataBytes ? Buffer.from(dataBytes).toString('latin1') : blob.data;
    if (base64 !== undefined && sha256Hex(Buffer.from(base64, 'base64')) !== digest) {
      this.audit.fail(
        blob.entryIndex,
        'key_bundle.published',
        'the exported HE public parameters do not match the digest this entry records',
      );
    }
  }

  private async update(
    update: AuditedUpdate,
    blob: ExportBlob,
    base64: Uint8Array | string | undefined,
  ): Promise<void> {
    if (blob.digest !== update.digest) {
      this.fail(
        update,
        `the export's update record names digest ${blob.digest.slice(0, 16)}…, not the one the site signed`,
      );
    }
    const round = this.audit.rounds.get(update.roundId);
    if (round?.state !== 'sealed') return; // only sealed rounds have an aggregate to recompute
    const r = this.refoldOf(round);
    if (r.outcome) return;
    if (round.accepted[r.received] !== update) {
      r.outcome = 'mismatch';
      this.fail(
        update,
        `appears out of ledger order in the export (round ${round.number}'s updates must follow their entries)`,
      );
      return;
    }
    r.received++;
    if (base64 === undefined) {
      r.absent.set(update.siteId, blob.absent ?? 'no reason given');
      return;
    }
    if (r.absent.size > 0) return; // an earlier update is gone: this round cannot be recomputed anyway
    // Decoding and hashing run on worker threads while this one reads on; folds run behind them,
    // in ledger order within a round.
    const decoded = this.decoder.decode(base64);
    decoded.catch(() => undefined); // awaited in turn below; a failure surfaces there
    const folding = r.folding.then(async () => this.fold(r, update, await decoded));
    r.folding = folding;
    this.inFlight.add(folding);
    void folding.then(() => this.inFlight.delete(folding));
    while (this.inFlight.size >= FOLDS_IN_FLIGHT) await Promise.race(this.inFlight);
    while (this.batches.size >= BATCHES_IN_FLIGHT) await Promise.race(this.batches);
  }

  /** Takes one decoded update into its round's sum once it hashes to what the site signed. */
  private async fold(r: Refold, update: AuditedUpdate, decoded: DecodedUpdate): Promise<void> {
    if (r.outcome) return this.decoder.release(decoded);
    const agg = this.checked(update, decoded);
    if (!agg) {
      r.outcome = 'mismatch';
      return this.decoder.release(decoded);
    }
    r.batch.push({ update, decoded });
    r.checked++;
    if (r.batch.length >= FOLD_BATCH || r.checked === r.round.accepted.length) {
      const batch = this.foldBatch(r, agg);
      const settled = batch.catch(() => undefined);
      this.batches.add(settled);
      void settled.then(() => this.batches.delete(settled));
      await batch;
    }
  }

  /** Adds the round's waiting updates to its sum; on a refusal, names the update refused. */
  private async foldBatch(r: Refold, agg: AuditAggregator): Promise<void> {
    const batch = r.batch;
    r.batch = [];
    try {
      await this.foldAll(r, agg, batch);
    } finally {
      for (const b of batch) this.decoder.release(b.decoded);
    }
    if (r.folded === r.round.accepted.length) await this.compare(r);
  }

  private async foldAll(r: Refold, agg: AuditAggregator, batch: Refold['batch']): Promise<void> {
    const parameterCount = this.audit.federation?.parameterCount ?? 0;
    try {
      r.sum = await agg.foldMany(
        r.sum,
        batch.map((b) => b.decoded.bytes),
        parameterCount,
      );
    } catch {
      // One at a time from the sum before the batch (which a refused fold leaves as it was).
      for (const b of batch) {
        try {
          r.sum = await agg.foldMany(r.sum, [b.decoded.bytes], parameterCount);
        } catch (err) {
          r.outcome = 'mismatch';
          this.fail(b.update, `its stored update cannot be added to the round's sum: ${messageOf(err)}`);
          return;
        }
      }
    }
    r.folded += batch.length;
  }

  /** The aggregator to fold the update with, once it hashes to what the site signed and is well-formed. */
  private checked(update: AuditedUpdate, decoded: DecodedUpdate): AuditAggregator | undefined {
    if (decoded.sha256 !== update.digest) {
      this.fail(
        update,
        `its stored update does not hash to the digest site ${update.siteId} signed (sha256 ${decoded.sha256.slice(0, 16)}…): the coordinator holds other bytes than it accepted`,
      );
      return undefined;
    }
    const agg = this.aggregatorFor();
    if (!agg) return undefined;
    try {
      agg.aggregator.validate(decoded.bytes, this.audit.federation?.parameterCount ?? 0);
    } catch (err) {
      this.fail(update, `its stored update is not a well-formed update: ${messageOf(err)}`);
      return undefined;
    }
    return agg;
  }

  /** Compares a round's recomputed aggregate with the digest it was sealed with. */
  private async compare(r: Refold): Promise<void> {
    const round = r.round;
    const sum = r.sum;
    r.sum = undefined;
    const digest = sum ? await this.decoder.sha256(sum) : undefined;
    if (digest === round.aggregateDigest) {
      r.outcome = 'yes';
      return;
    }
    r.outcome = 'mismatch';
    this.audit.fail(
      round.closedIndex,
      'round.sealed',
      `seals an aggregate (sha256 ${round.aggregateDigest?.slice(0, 16)}…) that is not the sum of its ${round.accepted.length} accepted updates (recomputed ${digest?.slice(0, 16)}…)`,
    );
  }

  /** The federation's aggregator, chosen from what the ledger pins; undefined when it cannot be. */
  private aggregatorFor(): AuditAggregator | undefined {
    const federation = this.audit.federation;
    if (this.aggregator === undefined && federation) {
      try {
        // The key the federation's ciphertexts are under is the one its key bundle entry published.
        this.aggregator = aggregatorForAudit(federation, [...this.audit.keyBundles.values()].at(-1));
      } catch (err) {
        if (!(err instanceof UnsupportedEncodingError)) throw err;
        this.aggregator = null;
        this.audit.fail(0, 'federation.created', `cannot be recomputed by this verifier: ${err.message}`);
      }
    }
    return this.aggregator ?? undefined;
  }

  private refoldOf(round: AuditedRound): Refold {
    let r = this.refolds.get(round.roundId);
    if (!r) {
      r = {
        round,
        received: 0,
        checked: 0,
        folded: 0,
        folding: Promise.resolve(),
        batch: [],
        sum: undefined,
        absent: new Map(),
        outcome: undefined,
      };
      this.refolds.set(round.roundId, r);
    }
    return r;
  }

  private fail(update: AuditedUpdate, message: string): void {
    this.audit.fail(update.index, 'update.accepted', message);
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
