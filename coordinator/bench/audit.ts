/**
 * `pnpm bench:audit`: time and peak memory to export and to verify 1,000 sealed rounds of a 3-site
 * federation with every update retained, on the federation's own aggregator (see
 * audit-bench.ts for what is measured and how). It sits outside the coordinator's src/ because an HE
 * federation's updates must be encrypted with a site's secret key, which production coordinator code
 * may never reach (aggregation/public-only.test.ts checks src/ for that).
 *
 * Options: --rounds N (1000), --sites N (3), --preset NAME (the default HE preset; `plaintext` for
 * float64 FedAvg), --dir DIR (kept), --keep, --database-url URL (an empty PostgreSQL database;
 * default embedded PGlite).
 */
import { parseArgs } from 'node:util';
import { DEFAULT_HE_PRESET, hePreset, isEncrypted } from '@radfed/shared';
import { SiteHe } from '@radfed/shared/he-site';
import { runAuditBench } from './audit-bench.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '1000' },
    sites: { type: 'string', default: '3' },
    preset: { type: 'string', default: DEFAULT_HE_PRESET },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'database-url': { type: 'string' },
  },
});

const preset = hePreset(values.preset);
const cipher = isEncrypted(preset) ? new SiteHe() : undefined;
try {
  const key = cipher ? await cipher.generateKeys(preset) : undefined;
  await runAuditBench({
    rounds: Number(values.rounds),
    sites: Number(values.sites),
    preset: values.preset,
    ...(cipher && key
      ? {
          he: {
            keyId: key.keyId,
            publicParameters: key.publicParameters,
            encrypt: async (weights, samples, plan) =>
              (await cipher.encrypt(preset, key, weights, samples, plan)).bytes,
          },
        }
      : {}),
    ...(values.dir ? { dir: values.dir } : {}),
    keep: values.keep,
    ...(values['database-url'] ? { databaseUrl: values['database-url'] } : {}),
    say: (line) => process.stdout.write(`${line}\n`),
  });
} catch (err) {
  process.stderr.write(
    `bench:audit failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
} finally {
  await cipher?.close();
}
