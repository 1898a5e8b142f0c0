import type { Logger } from '@radfed/shared';
import type { BlobStore } from '../blobs/types.js';
import type { Db } from '../store/client.js';
import * as roundQ from '../store/queries/rounds.js';
import type { Ledger } from './ledger.js';

export interface RetentionOptions {
  db: Db;
  blobs: BlobStore;
  ledger: Ledger;
  log: Logger;
  /** Keep the stored updates of this many most recent closed rounds per federation; 0 keeps all. */
  keepRounds: number;
}

/**
 * Ciphertext retention: deletes the stored updates of closed rounds beyond the newest `keepRounds`.
 * Each pruned round gets a `round.updates_pruned` ledger entry in the transaction that forgets the
 * blob keys, so an auditor can tell a round pruned by policy from one whose updates went missing;
 * the blobs themselves are deleted after the commit (a crash in between leaves unreferenced files,
 * never a row pointing at a deleted blob). Safe to run concurrently and repeatedly.
 */
export class UpdateRetention {
  constructor(private readonly o: RetentionOptions) {}

  get enabled(): boolean {
    return this.o.keepRounds > 0;
  }

  /** Prunes one federation; returns how many rounds it pruned. */
  async prune(federationId: string): Promise<number> {
    if (!this.enabled) return 0;
    const closed = (await roundQ.listRounds(this.o.db, federationId))
      .filter((r) => r.state === 'sealed' || r.state === 'failed' || r.state === 'cancelled')
      .sort((a, b) => b.number - a.number);
    let pruned = 0;
    for (const round of closed.slice(this.o.keepRounds)) {
      const dropped = await this.o.db.transaction(async (tx) => {
        const forgotten = await roundQ.forgetUpdateKeys(tx, round.id);
        if (forgotten.length === 0) return [];
        await this.o.ledger.append(tx, federationId, 'round.updates_pruned', {
          roundId: round.id,
          number: round.number,
          siteIds: forgotten.map((f) => f.siteId).sort(),
          keepRounds: this.o.keepRounds,
        });
        return forgotten;
      });
      if (dropped.length === 0) continue;
      pruned++;
      for (const f of dropped) await this.o.blobs.delete(f.updateKey).catch(() => undefined);
      this.o.log.info(`retention: deleted the ${dropped.length} stored updates of round ${round.number}`, {
        federation_id: federationId,
        round_id: round.id,
      });
    }
    return pruned;
  }
}
