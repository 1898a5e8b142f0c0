import { eq, sql } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { federations, modelVersions } from '../schema.js';

export type FederationRow = typeof federations.$inferSelect;
export type ModelVersionRow = typeof modelVersions.$inferSelect;

/** Inserts a federation and its seeded version-0 model (built by every site from the spec's seed). */
export async function insertFederation(
  ex: Executor,
  row: typeof federations.$inferInsert,
): Promise<FederationRow> {
  const [created] = await ex.insert(federations).values(row).returning();
  await ex.insert(modelVersions).values({ federationId: row.id, version: 0 });
  return created!;
}

export async function getFederation(ex: Executor, id: string): Promise<FederationRow | undefined> {
  const [row] = await ex.select().from(federations).where(eq(federations.id, id));
  return row;
}

export async function getFederationByName(ex: Executor, name: string): Promise<FederationRow | undefined> {
  const [row] = await ex.select().from(federations).where(eq(federations.name, name));
  return row;
}

export async function listFederations(ex: Executor): Promise<FederationRow[]> {
  return ex.select().from(federations).orderBy(federations.createdAt);
}

export async function getModelVersion(
  ex: Executor,
  federationId: string,
  version: number,
): Promise<ModelVersionRow | undefined> {
  const [row] = await ex
    .select()
    .from(modelVersions)
    .where(sql`${modelVersions.federationId} = ${federationId} and ${modelVersions.version} = ${version}`);
  return row;
}

/** Records a new global model version and advances the federation's current version to it. */
export async function addModelVersion(ex: Executor, row: typeof modelVersions.$inferInsert): Promise<void> {
  await ex.insert(modelVersions).values(row);
  await ex
    .update(federations)
    .set({ currentModelVersion: row.version })
    .where(eq(federations.id, row.federationId));
}
