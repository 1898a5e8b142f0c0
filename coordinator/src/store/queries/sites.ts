import { and, eq, inArray, isNull } from 'drizzle-orm';
import { type SiteState, siteSourcesOf } from '../../rounds/states.js';
import type { Executor } from '../client.js';
import { enrolmentTokens, sites } from '../schema.js';

export type SiteRow = typeof sites.$inferSelect;
export type EnrolmentTokenRow = typeof enrolmentTokens.$inferSelect;

export async function insertToken(ex: Executor, row: typeof enrolmentTokens.$inferInsert): Promise<void> {
  await ex.insert(enrolmentTokens).values(row);
}

export async function getToken(ex: Executor, tokenHash: string): Promise<EnrolmentTokenRow | undefined> {
  const [row] = await ex.select().from(enrolmentTokens).where(eq(enrolmentTokens.tokenHash, tokenHash));
  return row;
}

/**
 * Marks a token used, only if it still is unused: returns false when another enrolment won the race,
 * which is what makes tokens single-use under concurrency.
 */
export async function consumeToken(
  ex: Executor,
  tokenHash: string,
  siteId: string,
  at: Date,
): Promise<boolean> {
  const rows = await ex
    .update(enrolmentTokens)
    .set({ usedAt: at, siteId })
    .where(and(eq(enrolmentTokens.tokenHash, tokenHash), isNull(enrolmentTokens.usedAt)))
    .returning({ tokenHash: enrolmentTokens.tokenHash });
  return rows.length === 1;
}

export async function insertSite(ex: Executor, row: typeof sites.$inferInsert): Promise<SiteRow> {
  const [created] = await ex.insert(sites).values(row).returning();
  return created!;
}

export async function getSite(ex: Executor, id: string): Promise<SiteRow | undefined> {
  const [row] = await ex.select().from(sites).where(eq(sites.id, id));
  return row;
}

export async function getSiteByFingerprint(ex: Executor, fingerprint: string): Promise<SiteRow | undefined> {
  const [row] = await ex.select().from(sites).where(eq(sites.certFingerprint, fingerprint));
  return row;
}

export async function getSiteByName(
  ex: Executor,
  federationId: string,
  name: string,
): Promise<SiteRow | undefined> {
  const [row] = await ex
    .select()
    .from(sites)
    .where(and(eq(sites.federationId, federationId), eq(sites.name, name)));
  return row;
}

export async function listSites(ex: Executor, federationId: string): Promise<SiteRow[]> {
  return ex.select().from(sites).where(eq(sites.federationId, federationId)).orderBy(sites.name);
}

export async function listEnrolledSites(ex: Executor, federationId: string): Promise<SiteRow[]> {
  return ex
    .select()
    .from(sites)
    .where(and(eq(sites.federationId, federationId), eq(sites.state, 'enrolled')))
    .orderBy(sites.name);
}

export async function touchSite(ex: Executor, id: string, at: Date, backend?: string): Promise<void> {
  await ex
    .update(sites)
    .set(backend ? { lastSeenAt: at, backend } : { lastSeenAt: at })
    .where(eq(sites.id, id));
}

/**
 * Compare-and-set on a site's state: moves it to `to` only from a state the site state machine
 * (rounds/states.ts) allows into `to`. Returns the updated row, or undefined when the site does not
 * exist or is in no such state (already revoked, or a concurrent change won).
 */
export async function updateSiteState(
  ex: Executor,
  id: string,
  to: SiteState,
  patch: Partial<typeof sites.$inferInsert>,
): Promise<SiteRow | undefined> {
  const from = siteSourcesOf(to);
  if (from.length === 0) return undefined;
  const [row] = await ex
    .update(sites)
    .set({ ...patch, state: to })
    .where(and(eq(sites.id, id), inArray(sites.state, from)))
    .returning();
  return row;
}
