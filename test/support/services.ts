/**
 * Real-service fixtures for the contract and end-to-end suites. PostgreSQL and NATS come from
 * `DATABASE_URL` / `NATS_URL` (defaults: the local services `.ci/run` starts); each suite gets its
 * own fresh database so runs never see each other's rows.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_ADMIN_URL =
  process.env.RADFED_TEST_PG_ADMIN_URL ??
  process.env.DATABASE_URL ??
  'postgres://root@127.0.0.1:5432/postgres';
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

export interface TempDatabase {
  url: string;
  drop(): Promise<void>;
}

/** Creates an empty database on the PostgreSQL server and returns its URL. */
export async function createTempDatabase(prefix = 'radfed_test'): Promise<TempDatabase> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(
      `Cannot reach PostgreSQL at ${PG_ADMIN_URL} (${(err as Error).message}). Start it (see .ci/run) or set DATABASE_URL.`,
    );
  }
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}
