import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '@radfed/coordinator/testing';
import { createTempDatabase } from '../support/services.js';
import { roundStoreContract } from './round-store.contract.js';

roundStoreContract('PGlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'radfed-pglite-'));
  return {
    open: () => openDatabase({ dataDir: dir }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

roundStoreContract('PostgreSQL', async () => {
  const db = await createTempDatabase();
  return { open: () => openDatabase({ databaseUrl: db.url }), cleanup: () => db.drop() };
});
