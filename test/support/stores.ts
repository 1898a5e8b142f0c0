/**
 * The coordinator's two databases, for suites that run against both: embedded PGlite in a fresh
 * directory, and a fresh database on the real PostgreSQL server (see services.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DatabaseHandle, type DatabaseOptions, openDatabase } from '@radfed/coordinator/testing';
import { createTempDatabase } from './services.js';

/** One empty database: where it is, a way to open it (again, as after a restart), and its removal. */
export interface TestStore {
  /** What `openDatabase` takes; a child process can open the same database with it. */
  options: DatabaseOptions;
  open(): Promise<DatabaseHandle>;
  /** Removes the database (close every handle first). */
  cleanup(): Promise<void>;
}

export interface StoreKind {
  name: 'PGlite' | 'PostgreSQL';
  create(): Promise<TestStore>;
}

export const STORE_KINDS: StoreKind[] = [
  {
    name: 'PGlite',
    create: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'radfed-pglite-'));
      const options = { dataDir: dir };
      return {
        options,
        open: () => openDatabase(options),
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'PostgreSQL',
    create: async () => {
      const db = await createTempDatabase();
      const options = { databaseUrl: db.url };
      return { options, open: () => openDatabase(options), cleanup: () => db.drop() };
    },
  },
];
