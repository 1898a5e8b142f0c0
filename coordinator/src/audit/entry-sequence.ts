import { checkLedgerEntry, GENESIS_DIGEST, type LedgerEntryRecord } from '@radfed/shared';
import type { LedgerAudit } from './ledger-audit.js';

/** Entries held back waiting for a lower index before the lowest absent one is declared missing. */
const REORDER_WINDOW = 10_000;

/**
 * Puts an export's entries back in index order and checks the hash chain as it goes.
 *
 * The order of lines in the file is not signed, so it cannot change what the ledger says: entries
 * are chain-checked and replayed ({@link LedgerAudit.apply}) in index order whatever order the file
 * holds them in, and what is wrong with the file itself is named as such. An index that never
 * appears is missing (deleted); one that appears twice is duplicated; entries that stand out of index
 * order are reordered (two that trade places are reported as a swap). A deletion is therefore not
 * mistaken for a reordering, nor a reordering for a deletion.
 *
 * Memory: entries arriving ahead of a gap are held (at most {@link REORDER_WINDOW}); a well-formed
 * export holds none.
 */
export class EntrySequence {
  /** The index the chain needs next, and the digest it must link to. */
  private next = 0;
  private previousDigest = GENESIS_DIGEST;
  /** Entries that arrived ahead of `next`, by index. */
  private readonly ahead = new Map<number, LedgerEntryRecord>();
  /** Every index taken, with its kind, in file order: tells reordering apart from deletion. */
  private readonly order: { index: number; kind: string }[] = [];
  private readonly seen = new Set<number>();
  /** Index ranges [from, to) found missing, ascending (ranges: a forged index may be huge). */
  private readonly missing: { from: number; to: number }[] = [];

  constructor(
    private readonly audit: LedgerAudit,
    private readonly federationId: string,
    private readonly coordinatorKey: Uint8Array,
  ) {}

  /** Entries taken, duplicates excepted. */
  get count(): number {
    return this.order.length;
  }

  /** The digest of the last entry in the chain checked so far. */
  get headDigest(): string {
    return this.previousDigest;
  }

  /** Takes the next entry record in file order. */
  take(entry: LedgerEntryRecord): void {
    if (this.seen.has(entry.index)) {
      this.audit.fail(entry.index, entry.kind, 'appears more than once in the export');
      return;
    }
    this.seen.add(entry.index);
    if (entry.index < this.next) {
      // Declared missing already (it came after the entries that follow it, beyond the window).
      this.audit.fail(entry.index, entry.kind, 'stands in the export after the entries that follow it');
      return;
    }
    this.order.push({ index: entry.index, kind: entry.kind });
    this.ahead.set(entry.index, entry);
    this.drain();
    if (this.ahead.size > REORDER_WINDOW) this.skipGap();
  }

  /**
   * Ends the entries (the next record is not one): whatever is still held ahead of a gap is checked,
   * each gap named once as missing.
   */
  flush(): void {
    while (this.ahead.size > 0) this.skipGap();
  }

  /**
   * After the last record: names the entries missing up to the head the coordinator reported when the
   * export began (`headIndex`, -1 for an empty ledger), then how the file displaced any entries.
   */
  finish(headIndex: number): void {
    this.flush();
    if (this.next <= headIndex) {
      const more = headIndex - this.next;
      this.audit.fail(
        this.next,
        undefined,
        `is missing${more === 0 ? '' : more === 1 ? ', as is the entry after it' : `, as are the ${more} entries after it`}: the export ends at #${this.next - 1}, but the coordinator reported its head at #${headIndex}`,
      );
      this.missing.push({ from: this.next, to: headIndex + 1 });
    } else if (headIndex >= 0 && this.next - 1 > headIndex) {
      this.audit.fail(
        undefined,
        undefined,
        `the export holds entries up to #${this.next - 1}, past the head (#${headIndex}) the coordinator reported when it began`,
      );
    }
    this.reportDisplaced();
  }

  /** Checks and applies the entries that continue the chain from `next`. */
  private drain(): void {
    for (let entry = this.ahead.get(this.next); entry; entry = this.ahead.get(this.next)) {
      this.ahead.delete(this.next);
      const problem = checkLedgerEntry(
        entry,
        { federationId: this.federationId, index: this.next, previousDigest: this.previousDigest },
        this.coordinatorKey,
      );
      if (problem) this.audit.fail(entry.index, entry.kind, problem);
      this.next = entry.index + 1;
      this.previousDigest = entry.digest;
      this.audit.apply(entry);
    }
  }

  /** Names the indices from `next` to the lowest entry held ahead as missing, and goes on from there. */
  private skipGap(): void {
    let to = Number.POSITIVE_INFINITY;
    for (const index of this.ahead.keys()) to = Math.min(to, index);
    const entry = this.ahead.get(to)!;
    this.audit.fail(
      this.next,
      undefined,
      this.next === 0
        ? `is missing: the export's chain starts at #${to}, so entries were deleted`
        : `is missing: the chain jumps from #${this.next - 1} to #${to}, so entries were deleted`,
    );
    this.missing.push({ from: this.next, to });
    // Resynchronise on what is there, so one deletion is named once rather than cascading.
    this.next = to;
    this.previousDigest = entry.previousDigest;
    this.drain();
  }

  /**
   * Entries whose place in the file is not their place in the chain, once deletions are allowed for:
   * with entries k missing, entry i belongs at position i - k.
   */
  private reportDisplaced(): void {
    const belongsAt = (index: number) => index - countBelow(this.missing, index);
    const displaced = this.order.flatMap((e, at) => (belongsAt(e.index) === at ? [] : [{ ...e, at }]));
    if (displaced.length === 0) return;
    const first = displaced.reduce((a, b) => (b.index < a.index ? b : a));
    const [a, b] = displaced;
    if (displaced.length === 2 && belongsAt(a!.index) === b!.at && belongsAt(b!.index) === a!.at) {
      const [lo, hi] = a!.index < b!.index ? [a!, b!] : [b!, a!];
      this.audit.fail(
        lo.index,
        lo.kind,
        `is out of place: entries #${lo.index} and #${hi.index} are swapped in the export (each stands where the other belongs)`,
      );
      return;
    }
    const named = displaced
      .map((e) => e.index)
      .sort((x, y) => x - y)
      .slice(0, 10)
      .map((i) => `#${i}`);
    this.audit.fail(
      first.index,
      first.kind,
      `is out of place: the export reorders entries ${named.join(', ')}${displaced.length > 10 ? ` and ${displaced.length - 10} more` : ''}, which must stand in index order`,
    );
  }
}

/** How many indices of the ascending, disjoint `ranges` are below `value`. */
function countBelow(ranges: { from: number; to: number }[], value: number): number {
  let count = 0;
  for (const r of ranges) {
    if (r.from >= value) break;
    count += Math.min(r.to, value) - r.from;
  }
  return count;
}
