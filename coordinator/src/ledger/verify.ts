import { X509Certificate } from 'node:crypto';
import {
  checkLedgerEntry,
  type ExportBlob,
  type ExportHeader,
  type ExportSite,
  fingerprint,
  GENESIS_DIGEST,
  keyFingerprint,
  readAuditExport,
  sha256Hex,
} from '@radfed/shared';
import type { Aggregator } from '../aggregation/aggregator.js';
import { type AuditAggregator, aggregatorForAudit, UnsupportedEncodingError } from './audit-aggregator.js';
import { type AuditedRound, type AuditedRoundState, type Finding, LedgerAudit } from './ledger-audit.js';

export type { Finding } from './ledger-audit.js';

export interface VerifyOptions {
  /**
   * The coordinator's ledger key (raw 32 bytes) the auditor trusts, obtained out of band. Without it
   * the key named in the export is used and reported by fingerprint, to be compared by hand.
   */
  coordinatorKey?: Uint8Array;
}

/** Folds queued at once: bounds memory to a few updates and sums while keeping HE workers busy. */
const FOLDS_IN_FLIGHT = 8;

/** Whether a sealed round's aggregate was recomputed from its updates, and if not, why. */
export type Recomputed = 'yes' | 'pruned' | 'missing' | 'mismatch' | 'n/a';

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

/** A sealed round's running recomputation. */
interface Refold {
  round: AuditedRound;
  /** Updates received so far (in ledger order). */
  next: number;
  /** Updates folded so far; folds run behind receipt, one after another within a round. */
  folded: number;
  folding: Promise<void>;
  sum: Uint8Array | undefined;
  absent: Map<string, string>;
  broken: boolean;
  done: Recomputed | undefined;
}

/**
 * Verifies an audit export offline, from the file alone (and optionally a pinned coordinator key):
 * 1. the hash chain: every index present once and in order, each entry linked to its predecessor,
 *    its payload canonical and matching its digest, its digest signed by the coordinator's key;
 * 2. the ledger's story ({@link LedgerAudit}): every accepted update signed by an enrolled, unrevoked,
 *    invited site over exactly the recorded facts, with the coordinator's receipt; sealed rounds
 *    include exactly their updates;
 * 3. each sealed round's aggregate: the stored updates hash to the digests the sites signed, and
 *    folding them in ledger order with the federation's aggregator gives exactly the aggregate digest
 *    the round was sealed with. Rounds whose updates were pruned by a ledger-recorded retention
 *    policy are reported as not recomputed; a missing update nothing explains fails;
 * 4. the certificates in the export are the ones the ledger enrolled, issued by the pinned CA.
 *
 * Memory stays bounded by one update plus one running sum, whatever the number of rounds.
 */
export async function verifyAuditExport(path: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  let header: ExportHeader | undefined;
  let audit: LedgerAudit | undefined;
  let key: Uint8Array = new Uint8Array(32);
  const sites: ExportSite[] = [];
  let expected = { index: 0, previousDigest: GENESIS_DIGEST };
  let entries = 0;
  let aggregator: AuditAggregator | undefined;
  let aggregatorProblem: string | undefined;
  const refolds = new Map<string, Refold>();
  const exportProblems: Finding[] = [];
  const inFlight = new Set<Promise<void>>();

  const refoldOf = (round: AuditedRound): Refold => {
    let r = refolds.get(round.roundId);
    if (!r) {
      r = {
        round,
        next: 0,
        folded: 0,
        folding: Promise.resolve(),
        sum: undefined,
        absent: new Map(),
        broken: false,
        done: undefined,
      };
      refolds.set(round.roundId, r);
    }
    return r;
  };

  const aggregatorFor = (a: LedgerAudit): Aggregator | undefined => {
    if (aggregator || aggregatorProblem || !a.federation) return aggregator?.aggregator;
    try {
      // The key the federation's ciphertexts are under is the one its key bundle entry published.
      aggregator = aggregatorForAudit(a.federation, [...a.keyBundles.values()].at(-1));
    } catch (err) {
      if (!(err instanceof UnsupportedEncodingError)) throw err;
      aggregatorProblem = err.message;
      a.fail(0, 'federation.created', `cannot be recomputed by this verifier: ${err.message}`);
    }
    return aggregator?.aggregator;
  };

  const onBlob = async (a: LedgerAudit, blob: ExportBlob) => {
    if (blob.role === 'he-public-parameters') {
      const digest = a.keyBundles.get(blob.entryIndex);
      if (digest === undefined) {
        a.fail(
          undefined,
          undefined,
          `the export holds HE parameters for entry #${blob.entryIndex}, which publishes no key bundle`,
        );
      } else if (blob.data !== undefined) {
        const data = Buffer.from(blob.data, 'base64');
        if (sha256Hex(data) !== digest) {
          a.fail(
            blob.entryIndex,
            'key_bundle.published',
            'the exported HE public parameters do not match the digest this entry records',
          );
        }
      }
      return;
    }
    const update = a.updates.get(blob.entryIndex);
    if (!update) {
      a.fail(
        undefined,
        undefined,
        `the export holds an update for entry #${blob.entryIndex}, which records no accepted update`,
      );
      return;
    }
    const fail = (message: string) => a.fail(update.index, 'update.accepted', message);
    if (blob.digest !== update.digest) {
      fail(
        `the export's update record names digest ${blob.digest.slice(0, 16)}…, not the one the site signed`,
      );
    }
    const round = a.rounds.get(update.roundId);
    if (round?.state !== 'sealed') return; // only sealed rounds have an aggregate to recompute
    const r = refoldOf(round);
    if (r.broken || r.done) return;
    if (round.accepted[r.next] !== update) {
      r.broken = true;
      fail(
        `appears out of ledger order in the export (round ${round.number}'s updates must follow their entries)`,
      );
      return;
    }
    r.next++;
    if (blob.data === undefined) {
      r.absent.set(update.siteId, blob.absent ?? 'no reason given');
      return;
    }
    if (r.absent.size > 0) return; // an earlier update is gone: this round cannot be recomputed anyway
    const data = Buffer.from(blob.data, 'base64');
    const actual = sha256Hex(data);
    if (actual !== update.digest) {
      r.broken = true;
      fail(
        `its stored update does not hash to the digest site ${update.siteId} signed (sha256 ${actual.slice(0, 16)}…): the coordinator holds other bytes than it accepted`,
      );
      return;
    }
    const agg = aggregatorFor(a);
    if (!agg) {
      r.broken = true;
      return;
    }
    try {
      agg.validate(data, a.federation?.parameterCount ?? 0);
    } catch (err) {
      r.broken = true;
      fail(`its stored update is not a well-formed update: ${(err as Error).message}`);
      return;
    }
    // Folds run behind reading: encrypted folds run on HE worker threads, so while they work this
    // thread reads, hashes and checks the next updates (of this round or the next few).
    const folding = r.folding.then(async () => {
      if (r.broken) return;
      try {
        r.sum = await agg.fold(r.sum, data);
      } catch (err) {
        r.broken = true;
        fail(`its stored update cannot be added to the round's sum: ${(err as Error).message}`);
        return;
      }
      r.folded++;
      if (r.folded === round.accepted.length) finishRefold(a, r);
    });
    r.folding = folding;
    inFlight.add(folding);
    void folding.then(() => inFlight.delete(folding));
    while (inFlight.size >= FOLDS_IN_FLIGHT) await Promise.race(inFlight);
  };

  try {
    for await (const record of readAuditExport(path)) {
      switch (record.type) {
        case 'header':
          header = record;
          key = opts.coordinatorKey ?? Buffer.from(record.coordinatorSigningKey, 'base64');
          audit = new LedgerAudit(record.federationId, key);
          break;
        case 'site':
          sites.push(record);
          break;
        case 'entry': {
          const a = audit!;
          entries++;
          const entry = { ...record, federationId: header!.federationId };
          if (record.index > expected.index) {
            // A gap: name the first absent entry, then check what follows on its own terms.
            a.fail(
              expected.index,
              undefined,
              `is missing: the chain jumps from #${expected.index - 1} to #${record.index}, so entries were deleted`,
            );
            expected = { index: record.index, previousDigest: record.previousDigest };
          }
          const problem = checkLedgerEntry(entry, { federationId: entry.federationId, ...expected }, key);
          if (problem) a.fail(record.index, record.kind, problem);
          // Resynchronise on what is there, so one bad entry is named once rather than cascading.
          expected = { index: record.index + 1, previousDigest: record.digest };
          a.apply(entry);
          break;
        }
        case 'blob':
          await onBlob(audit!, record);
          break;
        case 'end':
          break;
      }
    }
    await Promise.all([...refolds.values()].map((r) => r.folding));
  } finally {
    await aggregator?.close();
  }
  const a = audit!;
  if (header && header.head.index >= 0 && entries !== header.head.index + 1) {
    exportProblems.push({
      index: undefined,
      kind: undefined,
      message: `the export holds ${entries} entries, but the coordinator reported its head at #${header.head.index}`,
    });
  }
  if (header && a.federation) checkSites(a, header, sites);

  for (const round of a.roundList) {
    if (round.state !== 'sealed') continue;
    const r = refoldOf(round);
    if (r.done || r.broken) continue;
    if (r.next < round.accepted.length) {
      const missing = round.accepted[r.next]!;
      a.fail(
        missing.index,
        'update.accepted',
        'has no update record in the export (neither the bytes nor why they are absent)',
      );
      r.broken = true;
      continue;
    }
    if (r.absent.size > 0) {
      const unexplained = [...r.absent].filter(([siteId]) => !round.pruned?.siteIds.has(siteId));
      if (unexplained.length === 0) {
        r.done = 'pruned';
        continue;
      }
      const [siteId, why] = unexplained[0]!;
      const u = round.accepted.find((x) => x.siteId === siteId)!;
      a.fail(
        u.index,
        'update.accepted',
        `its stored update is gone (the coordinator says: ${why}) and no retention entry in the ledger deleted it`,
      );
      r.done = 'missing';
    }
  }

  const findings = [...a.findings, ...exportProblems].sort(
    (x, y) => (x.index ?? Number.POSITIVE_INFINITY) - (y.index ?? Number.POSITIVE_INFINITY),
  );
  const failing = new Set(findings.map((f) => f.index));
  const rounds: RoundVerdict[] = a.roundList.map((round) => {
    const r = refolds.get(round.roundId);
    const recomputed: Recomputed =
      round.state !== 'sealed' ? 'n/a' : (r?.done ?? (r?.broken ? 'mismatch' : 'missing'));
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
  return {
    federationId: header?.federationId ?? '',
    federationName: header?.federationName ?? '',
    coordinatorKeyFingerprint: keyFingerprint(key),
    keyPinned: opts.coordinatorKey !== undefined,
    entries,
    headDigest: expected.previousDigest,
    rounds,
    findings,
    ok: findings.length === 0,
  };
}

/** Compares a round's recomputed aggregate with the digest it was sealed with. */
function finishRefold(a: LedgerAudit, r: Refold): void {
  const round = r.round;
  const digest = r.sum ? sha256Hex(r.sum) : undefined;
  r.sum = undefined;
  if (digest === round.aggregateDigest) {
    r.done = 'yes';
    return;
  }
  r.done = 'mismatch';
  a.fail(
    round.closedIndex,
    'round.sealed',
    `seals an aggregate (sha256 ${round.aggregateDigest?.slice(0, 16)}…) that is not the sum of its ${round.accepted.length} accepted updates (recomputed ${digest?.slice(0, 16)}…)`,
  );
}

/** The export's certificates must be the ones the ledger enrolled, issued by the CA it pinned. */
function checkSites(a: LedgerAudit, header: ExportHeader, sites: ExportSite[]): void {
  const created = a.federation!;
  let ca: X509Certificate | undefined;
  try {
    ca = new X509Certificate(header.caCertificatePem);
    if (fingerprint(ca.raw) !== created.caCertificateFingerprint) {
      a.fail(0, 'federation.created', 'pins a CA certificate other than the one in the export');
      ca = undefined;
    }
  } catch {
    a.fail(undefined, undefined, 'the export does not hold a readable CA certificate');
  }
  const listed = new Map(sites.map((s) => [s.siteId, s]));
  for (const [siteId, site] of a.sites) {
    const fail = (message: string) => a.fail(site.index, 'site.enrolled', message);
    const record = listed.get(siteId);
    if (!record) {
      fail(`enrols site ${siteId}, whose certificate the export omits`);
      continue;
    }
    try {
      const cert = new X509Certificate(record.certificatePem);
      if (fingerprint(cert.raw) !== site.certificateFingerprint) {
        fail(`records a certificate fingerprint for ${siteId} that the exported certificate does not have`);
      } else if (ca && !(cert.checkIssued(ca) && cert.verify(ca.publicKey))) {
        fail(`enrols ${siteId} with a certificate the federation CA did not issue`);
      }
    } catch {
      fail(`enrols ${siteId}, whose exported certificate is not readable`);
    }
    if (
      Buffer.from(record.signingPublicKey, 'base64').toString('base64') !== site.signingKey.toString('base64')
    ) {
      fail(`records a signing key for ${siteId} other than the one the coordinator now reports`);
    }
    if (record.revoked !== (site.revokedIndex !== undefined)) {
      fail(
        record.revoked
          ? `enrols ${siteId}, which the coordinator reports revoked though the ledger records no revocation`
          : `enrols ${siteId}, which the ledger revoked but the coordinator reports active`,
      );
    }
  }
  for (const siteId of listed.keys()) {
    if (!a.sites.has(siteId))
      a.fail(undefined, undefined, `the export lists site ${siteId}, which the ledger never enrolled`);
  }
}
