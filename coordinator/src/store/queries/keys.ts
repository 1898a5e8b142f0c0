import { and, asc, eq, isNull, sql } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { federations, keyBundles, sites, wrappedKeys } from '../schema.js';
import type { SiteRow } from './sites.js';

export type KeyBundleRow = typeof keyBundles.$inferSelect;
export type WrappedKeyRow = typeof wrappedKeys.$inferSelect;

export async function getKeyBundle(ex: Executor, federationId: string): Promise<KeyBundleRow | undefined> {
  const [row] = await ex.select().from(keyBundles).where(eq(keyBundles.federationId, federationId));
  return row;
}

/** Inserts the federation's key bundle; returns false when one already exists (first publisher wins). */
export async function insertKeyBundle(ex: Executor, row: typeof keyBundles.$inferInsert): Promise<boolean> {
  const inserted = await ex
    .insert(keyBundles)
    .values(row)
    .onConflictDoNothing()
    .returning({ id: keyBundles.federationId });
  return inserted.length === 1;
}

export async function getWrappedKey(
  ex: Executor,
  federationId: string,
  siteId: string,
): Promise<WrappedKeyRow | undefined> {
  const [row] = await ex
    .select()
    .from(wrappedKeys)
    .where(and(eq(wrappedKeys.federationId, federationId), eq(wrappedKeys.siteId, siteId)));
  return row;
}

/** Stores wrapped keys, keeping any a site already has; returns the site ids actually stored. */
export async function insertWrappedKeys(
  ex: Executor,
  rows: (typeof wrappedKeys.$inferInsert)[],
): Promise<string[]> {
  if (rows.length === 0) return [];
  const stored = await ex
    .insert(wrappedKeys)
    .values(rows)
    .onConflictDoNothing()
    .returning({ siteId: wrappedKeys.siteId });
  return stored.map((r) => r.siteId);
}

/** Enrolled sites of a federation that hold no wrapped HE key yet, oldest enrolment first. */
export async function sitesWithoutWrappedKey(ex: Executor, federationId: string): Promise<SiteRow[]> {
  const rows = await ex
    .select({ site: sites })
    .from(sites)
    .leftJoin(
      wrappedKeys,
      and(eq(wrappedKeys.federationId, sites.federationId), eq(wrappedKeys.siteId, sites.id)),
    )
    .where(and(eq(sites.federationId, federationId), eq(sites.state, 'enrolled'), isNull(wrappedKeys.siteId)))
    .orderBy(asc(sites.enrolledAt), asc(sites.id));
  return rows.map((r) => r.site);
}

/**
 * Sets the federation's key custodian. With `onlyIfUnset`, only when none is set yet (so two
 * concurrent defaults agree); returns whether the row changed.
 */
export async function setKeyCustodian(
  ex: Executor,
  federationId: string,
  siteId: string,
  onlyIfUnset = false,
): Promise<boolean> {
  const rows = await ex
    .update(federations)
    .set({ keyCustodianSiteId: siteId })
    .where(
      onlyIfUnset
        ? and(eq(federations.id, federationId), isNull(federations.keyCustodianSiteId))
        : eq(federations.id, federationId),
    )
    .returning({ id: federations.id });
  return rows.length === 1;
}

/** Number of sites enrolled (not revoked) in a federation. */
export async function countEnrolledSites(ex: Executor, federationId: string): Promise<number> {
  const [row] = await ex
    .select({ n: sql<number>`count(*)::int` })
    .from(sites)
    .where(and(eq(sites.federationId, federationId), eq(sites.state, 'enrolled')));
  return Number(row?.n ?? 0);
}
