import {
  canonicalJson,
  checkLedgerEntry,
  type ExportEntry,
  GENESIS_DIGEST,
  keyFingerprint,
  type LedgerEntryRecord,
  readAuditExport,
  verifyReceipt,
  verifyUpdateSignature,
} from '@radfed/shared';
import { z } from 'zod';
import { listReceipts, type StoredReceipt } from './receipts.js';

/** The facts of an `update.accepted` entry a site checks its receipt against. */
const acceptedSchema = z.object({
  roundId: z.string(),
  siteId: z.string(),
  modelVersion: z.number(),
  updateDigest: z.string(),
  sampleCount: z.number(),
  datasetCommitment: z.string(),
  metrics: z.record(z.string(), z.number()),
  siteSignature: z.string(),
  receiptSignature: z.string(),
});

export interface ReceiptCheck {
  receipt: StoredReceipt;
  /** Why the receipt is not backed by the ledger; undefined when it is. */
  problem: string | undefined;
}

/** An accepted update of this site that the ledger records but the site holds no receipt for. */
export interface MissingReceipt {
  ledgerIndex: number;
  roundId: string;
  roundNumber: number | undefined;
  acceptedAt: string;
  /** Whether the entry carries this site's own signature over its facts (false: not this site's upload). */
  signedBySite: boolean;
}

export interface ReceiptsReport {
  federationId: string;
  /** Hex SHA-256 of the coordinator key the receipts were checked against. */
  coordinatorKeyFingerprint: string;
  entries: number;
  /** The first entry that breaks the chain, if any: no receipt after it can be vouched for. */
  chainProblem: string | undefined;
  checks: ReceiptCheck[];
  /** Accepted updates of this site in the ledger with no receipt here (e.g. lost to a crash). */
  missing: MissingReceipt[];
  ok: boolean;
}

export interface VerifyReceiptsOptions {
  /** This site's raw Ed25519 public key (from its signing.key). */
  signingPublicKey: Uint8Array;
  /** Trust this coordinator key rather than the one the export names. */
  coordinatorKey?: Uint8Array;
  /** This site's id: accepted updates of it without a receipt here are reported as missing. */
  siteId?: string;
}

/**
 * Checks each receipt in the state directory against an audit export, offline: the export's chain
 * (digests, links and coordinator signatures) up to the receipt's entry, that the entry is the
 * `update.accepted` the receipt names (round, site, digest, time, receipt signature), that the
 * receipt's signature is the coordinator's, and that the entry records exactly the facts this site
 * signed (its own signature verifies over them).
 *
 * With `siteId`, also lists the accepted updates of this site the ledger holds that no receipt here
 * names: a receipt lost to a crash before the coordinator answered, or (when the entry does not
 * carry this site's signature) an update the site never sent.
 *
 * Security: a coordinator that drops an accepted update from its ledger, rewrites what a site
 * reported, or hands out an export signed with another key fails here, because the site holds a
 * receipt signed with the key the ledger must be signed with.
 */
export async function verifyReceipts(
  stateDir: string,
  exportPath: string,
  opts: VerifyReceiptsOptions,
): Promise<ReceiptsReport> {
  const receipts = await listReceipts(stateDir);
  const wanted = new Set(receipts.map((r) => r.ledgerIndex));
  const found = new Map<number, ExportEntry>();
  let federationId = '';
  let key: Uint8Array = new Uint8Array(32);
  let expected = { index: 0, previousDigest: GENESIS_DIGEST };
  let chainProblem: string | undefined;
  let brokenAt = Number.POSITIVE_INFINITY;
  let entries = 0;
  const missing: MissingReceipt[] = [];
  for await (const record of readAuditExport(exportPath)) {
    if (record.type === 'header') {
      federationId = record.federationId;
      key = opts.coordinatorKey ?? Buffer.from(record.coordinatorSigningKey, 'base64');
    } else if (record.type === 'entry') {
      entries++;
      const entry: LedgerEntryRecord = { ...record, federationId };
      const problem = checkLedgerEntry(entry, { federationId, ...expected }, key);
      if (problem && !chainProblem) {
        chainProblem = `entry #${record.index} (${record.kind}) ${problem}`;
        brokenAt = record.index;
      }
      expected = { index: record.index + 1, previousDigest: record.digest };
      if (wanted.has(record.index)) found.set(record.index, record);
      else if (opts.siteId !== undefined && record.kind === 'update.accepted') {
        const lost = missingReceipt(record, opts.siteId, opts.signingPublicKey);
        if (lost) missing.push(lost);
      }
    } else if (record.type === 'blob') {
      break; // entries all come before blobs; receipts need no blob
    }
  }
  const checks = receipts.map((r) => ({
    receipt: r,
    problem: checkOne(r, found.get(r.ledgerIndex), {
      federationId,
      key,
      entries,
      chainProblem: r.ledgerIndex >= brokenAt ? chainProblem : undefined,
      signingPublicKey: opts.signingPublicKey,
    }),
  }));
  return {
    federationId,
    coordinatorKeyFingerprint: keyFingerprint(key),
    entries,
    chainProblem,
    checks,
    missing,
    ok: !chainProblem && checks.every((c) => !c.problem) && missing.length === 0,
  };
}

/** The entry as a missing receipt when it records an accepted update of `siteId`. */
function missingReceipt(
  entry: ExportEntry,
  siteId: string,
  signingPublicKey: Uint8Array,
): MissingReceipt | undefined {
  const parsed = acceptedSchema
    .extend({ roundNumber: z.number().optional() })
    .safeParse(safeJson(entry.payload));
  if (!parsed.success || parsed.data.siteId !== siteId) return undefined;
  const p = parsed.data;
  return {
    ledgerIndex: entry.index,
    roundId: p.roundId,
    roundNumber: p.roundNumber,
    acceptedAt: entry.createdAt,
    signedBySite: verifyUpdateSignature(signingPublicKey, p, Buffer.from(p.siteSignature, 'base64')),
  };
}

function checkOne(
  r: StoredReceipt,
  entry: ExportEntry | undefined,
  ctx: {
    federationId: string;
    key: Uint8Array;
    entries: number;
    chainProblem: string | undefined;
    signingPublicKey: Uint8Array;
  },
): string | undefined {
  if (r.federationId !== ctx.federationId) {
    return `the receipt is for federation ${r.federationId}, the export is of ${ctx.federationId}`;
  }
  const facts = {
    federationId: r.federationId,
    roundId: r.roundId,
    siteId: r.siteId,
    updateDigest: r.updateDigest,
    ledgerIndex: r.ledgerIndex,
    acceptedAt: r.acceptedAt,
  };
  if (!verifyReceipt(ctx.key, facts, Buffer.from(r.coordinatorSignature, 'base64'))) {
    return "the receipt's signature is not the coordinator's key in this export: the export was signed with another key";
  }
  if (!entry)
    return `the ledger has no entry #${r.ledgerIndex} (it holds ${ctx.entries}): the update was dropped`;
  if (entry.kind !== 'update.accepted') {
    return `entry #${r.ledgerIndex} is a ${entry.kind}, not the update.accepted the receipt names`;
  }
  const parsed = acceptedSchema.safeParse(safeJson(entry.payload));
  if (!parsed.success) return `entry #${r.ledgerIndex} does not hold an accepted update's facts`;
  const p = parsed.data;
  if (p.roundId !== r.roundId || p.siteId !== r.siteId || p.updateDigest !== r.updateDigest) {
    return `entry #${r.ledgerIndex} records another update (round ${p.roundId}, site ${p.siteId}, digest ${p.updateDigest.slice(0, 12)}…)`;
  }
  if (p.receiptSignature !== r.coordinatorSignature || entry.createdAt !== r.acceptedAt) {
    return `entry #${r.ledgerIndex} records a different receipt than the one this site holds`;
  }
  if (!verifyUpdateSignature(ctx.signingPublicKey, p, Buffer.from(p.siteSignature, 'base64'))) {
    return `entry #${r.ledgerIndex} does not carry this site's signature over its facts`;
  }
  if (
    p.sampleCount !== r.sampleCount ||
    p.modelVersion !== r.modelVersion ||
    p.datasetCommitment !== r.datasetCommitment ||
    canonicalJson(p.metrics) !== canonicalJson(r.metrics)
  ) {
    return `entry #${r.ledgerIndex} records other facts (samples, metrics, dataset) than this site submitted`;
  }
  if (ctx.chainProblem) return `the chain does not hold up to this entry: ${ctx.chainProblem}`;
  return undefined;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
