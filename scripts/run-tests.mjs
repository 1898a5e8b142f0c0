#!/usr/bin/env node
// `pnpm test`: type-check, lint, protocol check, then every vitest project (unit, contract,
// integration, e2e) against the real PostgreSQL and NATS named by DATABASE_URL / NATS_URL
// (default: the local services). Prints one closing "N passed, N failed" line.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';

const steps = [
  ['type-check', 'pnpm', ['exec', 'tsc', '-b']],
  ['lint', 'pnpm', ['exec', 'biome', 'ci', '--error-on-warnings', '.']],
  ['protocol', 'pnpm', ['run', 'proto:check']],
];
const only = process.argv.slice(2);
if (only.length === 0) {
  for (const [name, cmd, args] of steps) {
    process.stdout.write(`\n== ${name}: ${cmd} ${args.join(' ')}\n`);
    const r = spawnSync(cmd, args, { stdio: 'inherit' });
    if (r.status !== 0) {
      process.stdout.write(`\n${name} failed\n0 passed, 1 failed\n`);
      process.exit(r.status ?? 1);
    }
  }
}
mkdirSync('.radfed', { recursive: true });
const results = '.radfed/test-results.json';
process.stdout.write('\n== tests: vitest run\n');
const r = spawnSync(
  'pnpm',
  ['exec', 'vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${results}`, ...only],
  {
    stdio: 'inherit',
  },
);
let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const json = JSON.parse(readFileSync(results, 'utf8'));
  passed = json.numPassedTests;
  failed = json.numFailedTests;
  skipped = json.numPendingTests + json.numTodoTests;
} catch {
  failed = Math.max(1, failed);
}
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(r.status === 0 && failed === 0 ? 0 : 1);
