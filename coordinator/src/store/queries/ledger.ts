import { and, asc, count, desc, eq, gte, inArray, isNotNull, sql } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { federations, keyBundles, ledgerEntries, modelVersions, participants, rounds } from '../schema.js';

export type LedgerEntryRow = typeof ledgerEntries.$inferSelect;

/**
 * Takes the federation's chain lock for the rest of the transaction: a row lock on the federation
 * that conflicts with itself but not with the key-share locks foreign keys take, so appends from
 * concurrent transactions (enrolments, revocations, round work) queue instead of racing for the
 * next index. Returns false when the federation does not exist.
 */
export async function lockChain(ex: Executor, federationId: string): Promise<boolean> {
  const rows = await ex
    .select({ id: federations.id })
    .from(federations)
    .where(eq(federations.id, federationId))
    .for('no key update');
  return rows.length === 1;
}

/** The last entry of a federation's chain, or undefined for an empty chain. */
export async function head(
  ex: Executor,
  federationId: string,
): Promise<Pick<LedgerEntryRow, 'index' | 'digest'> | undefined> {
  const [row] = await ex
    .select({ index: ledgerEntries.index, digest: ledgerEntries.digest })
    .from(ledgerEntries)
    .where(eq(ledgerEntries.federationId, federationId))
    .orderBy(desc(ledgerEntries.index))
    .limit(1);
  return row;
}

export async function insertEntry(ex: Executor, row: typeof ledgerEntries.$inferInsert): Promise<void> {
  await ex.insert(ledgerEntries).values(row);
}

/** Up to `limit` entries from `fromIndex` on, in chain order. */
export async function listEntries(
  ex: Executor,
  federationId: string,
  fromIndex: number,
  limit: number,
): Promise<LedgerEntryRow[]> {
  return ex
    .select()
    .from(ledgerEntries)
    .where(and(eq(ledgerEntries.federationId, federationId), gte(ledgerEntries.index, fromIndex)))
    .orderBy(asc(ledgerEntries.index))
    .limit(limit);
}

/**
 * The `update.accepted` entry recording one site's update to one round (to re-issue its receipt
 * for a duplicate submission). Reads the payload as JSON; duplicates are rare, so no index.
 */
export async function findUpdateAccepted(
  ex: Executor,
  federationId: string,
  roundId: string,
  siteId: string,
): Promise<LedgerEntryRow | undefined> {
  const [row] = await ex
    .select()
    .from(ledgerEntries)
    .where(
      and(
        eq(ledgerEntries.federationId, federationId),
        eq(ledgerEntries.kind, 'update.accepted'),
        sql`(${ledgerEntries.payload})::jsonb ->> 'roundId' = ${roundId}`,
        sql`(${ledgerEntries.payload})::jsonb ->> 'siteId' = ${siteId}`,
      ),
    )
    .limit(1);
  return row;
}

/** How many entries a federation's chain holds. */
export async function countEntries(ex: Executor, federationId: string): Promise<number> {
  const [row] = await ex
    .select({ n: count() })
    .from(ledgerEntries)
    .where(eq(ledgerEntries.federationId, federationId));
  return row?.n ?? 0;
}

/**
 * The blob-store key of a blob the ledger names by digest: an accepted update still retained, a
 * model version (aggregate), or a key bundle's public HE parameters. Undefined when none is held.
 */
export async function findBlobKey(
  ex: Executor,
  federationId: string,
  digest: string,
): Promise<string | undefined> {
  const [update] = await ex
    .select({ key: participants.updateKey })
    .from(participants)
    .innerJoin(rounds, eq(rounds.id, participants.roundId))
    .where(
      and(
        eq(rounds.federationId, federationId),
        eq(participants.updateDigest, digest),
        isNotNull(participants.updateKey),
      ),
    )
    .limit(1);
  if (update?.key) return update.key;
  const [model] = await ex
    .select({ key: modelVersions.blobKey })
    .from(modelVersions)
    .where(and(eq(modelVersions.federationId, federationId), eq(modelVersions.digest, digest)))
    .limit(1);
  if (model?.key) return model.key;
  const [bundle] = await ex
    .select({ key: keyBundles.publicParametersKey })
    .from(keyBundles)
    .where(and(eq(keyBundles.federationId, federationId), eq(keyBundles.publicParametersDigest, digest)))
    .limit(1);
  return bundle?.key;
}

/** {@link findBlobKey} for many digests in three queries; digests nothing is held for are left out. */
export async function findBlobKeys(
  ex: Executor,
  federationId: string,
  digests: string[],
): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  if (digests.length === 0) return found;
  const updates = await ex
    .select({ digest: participants.updateDigest, key: participants.updateKey })
    .from(participants)
    .innerJoin(rounds, eq(rounds.id, participants.roundId))
    .where(
      and(
        eq(rounds.federationId, federationId),
        inArray(participants.updateDigest, digests),
        isNotNull(participants.updateKey),
      ),
    );
  for (const u of updates) if (u.digest && u.key) found.set(u.digest, u.key);
  const rest = digests.filter((x) => !found.has(x));
  if (rest.length === 0) return found;
  const models = await ex
    .select({ digest: modelVersions.digest, key: modelVersions.blobKey })
    .from(modelVersions)
    .where(and(eq(modelVersions.federationId, federationId), inArray(modelVersions.digest, rest)));
  for (const m of models) if (m.digest && m.key) found.set(m.digest, m.key);
  const bundles = await ex
    .select({ digest: keyBundles.publicParametersDigest, key: keyBundles.publicParametersKey })
    .from(keyBundles)
    .where(and(eq(keyBundles.federationId, federationId), inArray(keyBundles.publicParametersDigest, rest)));
  for (const b of bundles) found.set(b.digest, b.key);
  return found;
}
