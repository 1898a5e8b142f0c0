import {
  AuditExportFormatError,
  type ExportEnd,
  type ExportHeader,
  type ExportRecord,
  type ExportSite,
  keyFingerprint,
  readAuditExport,
} from '@radfed/shared';
import { assertNever } from '../rounds/states.js';
import { EntrySequence } from './entry-sequence.js';
import { type AuditedRoundState, type Finding, LedgerAudit } from './ledger-audit.js';
import { Recomputation, type Recomputed } from './recompute.js';
import { checkSites } from './sites.js';

export type { Finding } from './ledger-audit.js';
export type { Recomputed } from './recompute.js';

export interface VerifyOptions {
  /**
   * The coordinator's ledger key (raw 32 bytes) the auditor trusts, obtained out of band. Without it
   * the key named in the export is used and reported by fingerprint, to be compared by hand.
   */
  coordinatorKey?: Uint8Array;
}

export interface RoundVerdict {
  number: number;
  roundId: string;
  state: AuditedRoundState;
  modelVersion: number;
  resultModelVersion: number | undefined;
  invited: number;
  accepted: number;
  samples: number;
  recomputed: Recomputed;
  /** True when no finding names one of this round's entries. */
  ok: boolean;
  note: string;
}

export interface VerifyReport {
  federationId: string;
  federationName: string;
  coordinatorKeyFingerprint: string;
  /** Whether the coordinator key came from the auditor (pinned) or from the export itself. */
  keyPinned: boolean;
  entries: number;
  headDigest: string;
  rounds: RoundVerdict[];
  /** Every problem found, the first (lowest entry index) first. */
  findings: Finding[];
  ok: boolean;
}

/**
 * Verifies an audit export offline, from the file alone (and optionally a pinned coordinator key):
 * 1. the hash chain ({@link EntrySequence}): every index present once, each entry linked to its
 *    predecessor, its payload canonical and matching its digest, its digest signed by the
 *    coordinator's key; entries the file deletes, repeats or reorders are named as such;
 * 2. the ledger's story ({@link LedgerAudit}): every accepted update signed by an enrolled, unrevoked,
 *    invited site over exactly the recorded facts, with the coordinator's receipt; sealed rounds
 *    include exactly their updates;
 * 3. each sealed round's aggregate ({@link Recomputation}): the stored updates hash to the digests the
 *    sites signed, and folding them in ledger order with the federation's aggregator gives exactly
 *    the aggregate digest the round was sealed with. Rounds whose updates were pruned by a
 *    ledger-recorded retention policy are reported as not recomputed; a missing update nothing
 *    explains fails;
 * 4. the certificates in the export are the ones the ledger enrolled, issued by the pinned CA
 *    ({@link checkSites}).
 *
 * Memory stays bounded by a few updates plus one running sum, whatever the number of rounds.
 *
 * @throws AuditExportFormatError when the file is not a readable export (no header, a damaged line,
 *   cut short); everything else is a finding in the report.
 */
export async function verifyAuditExport(path: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const records = readAuditExport(path, { checkEndCounts: false, blobDataAsBytes: true });
  const first = await records.next();
  if (first.done || first.value.type !== 'header') {
    throw new AuditExportFormatError(`${path} does not start with an export header`);
  }
  const check = new ExportCheck(first.value, opts);
  try {
    for await (const record of records) await check.take(record);
    return await check.report();
  } finally {
    await check.close();
  }
}

/** One verification's state: each part owns its own, and findings all go to the audit. */
class ExportCheck {
  private readonly key: Uint8Array;
  private readonly audit: LedgerAudit;
  private readonly entries: EntrySequence;
  private readonly recomputation: Recomputation;
  private readonly sites: ExportSite[] = [];
  /** Records of each type the file holds, to compare with its end record. */
  private readonly counted = { entries: 0, blobs: 0 };
  private end: ExportEnd | undefined;

  constructor(
    private readonly header: ExportHeader,
    private readonly opts: VerifyOptions,
  ) {
    this.key = opts.coordinatorKey ?? Buffer.from(header.coordinatorSigningKey, 'base64');
    this.audit = new LedgerAudit(header.federationId, this.key);
    this.entries = new EntrySequence(this.audit, header.federationId, this.key);
    this.recomputation = new Recomputation(this.audit);
  }

  async take(record: ExportRecord & { dataBytes?: Uint8Array }): Promise<void> {
    switch (record.type) {
      case 'header': // the reader refuses a second header
        return;
      case 'site':
        this.sites.push(record);
        return;
      case 'entry': {
        this.counted.entries++;
        const { type: _type, ...entry } = record;
        this.entries.take({ ...entry, federationId: this.header.federationId });
        return;
      }
      case 'blob':
        this.counted.blobs++;
        // Blobs follow the entries: whatever entries are still held back are checked now.
        this.entries.flush();
        await this.recomputation.take(record, record.dataBytes);
        return;
      case 'end':
        this.end = record;
        return;
      default:
        return assertNever(record);
    }
  }

  async report(): Promise<VerifyReport> {
    await this.recomputation.settle();
    this.entries.finish(this.header.head.index);
    this.recomputation.finish();
    if (this.audit.federation) checkSites(this.audit, this.header, this.sites);
    const { end, counted } = this;
    if (end && (end.entries !== counted.entries || end.blobs !== counted.blobs)) {
      this.audit.fail(
        undefined,
        undefined,
        `the end record counts ${end.entries} entries and ${end.blobs} blobs, but the file holds ${counted.entries} and ${counted.blobs}: records were added to or deleted from it`,
      );
    }
    const findings = distinct(this.audit.findings).sort(
      (x, y) => (x.index ?? Number.POSITIVE_INFINITY) - (y.index ?? Number.POSITIVE_INFINITY),
    );
    return {
      federationId: this.header.federationId,
      federationName: this.header.federationName,
      coordinatorKeyFingerprint: keyFingerprint(this.key),
      keyPinned: this.opts.coordinatorKey !== undefined,
      entries: counted.entries,
      headDigest: this.entries.headDigest,
      rounds: this.verdicts(new Set(findings.map((f) => f.index))),
      findings,
      ok: findings.length === 0,
    };
  }

  close(): Promise<void> {
    return this.recomputation.close();
  }

  private verdicts(failing: Set<number | undefined>): RoundVerdict[] {
    return this.audit.roundList.map((round) => {
      const recomputed = this.recomputation.recomputed(round);
      const own = [
        round.openedIndex,
        round.closedIndex,
        round.pruned?.index,
        ...round.accepted.map((u) => u.index),
      ];
      return {
        number: round.number,
        roundId: round.roundId,
        state: round.state,
        modelVersion: round.modelVersion,
        resultModelVersion: round.resultModelVersion,
        invited: round.invited.size,
        accepted: round.accepted.length,
        samples: round.totalSamples,
        recomputed,
        ok: !own.some((i) => i !== undefined && failing.has(i)) && recomputed !== 'mismatch',
        note:
          recomputed === 'pruned'
            ? `updates deleted by retention (entry #${round.pruned?.index})`
            : (round.reason ?? ''),
      };
    });
  }
}

/** Findings without repeats (two checks can name the same fault of one entry in the same words). */
function distinct(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const key = `${f.index}\u0000${f.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
