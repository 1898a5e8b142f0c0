/**
 * `pnpm bench:audit`: time and peak memory to export and to verify a federation's audit trail.
 *
 * Builds a coordinator's store (the configured database, local blob files, its dev PKI and ledger
 * key) holding a 3-site federation with N sealed rounds (default 1000) of signed updates, written
 * in-process through the store and the engine's own ledger records (see sealed-rounds.ts; no
 * training) with the federation's aggregator and every update retained. Then it starts a real
 * coordinator (gRPC over TLS) on that store and runs, each in its own process so time and peak RSS
 * are its own: `radfed audit export` (through AuditService, as an auditor) and `radfed audit verify`
 * (offline). The baseline, measured in the same run, is the floor for any verifier: streaming the
 * export file from disk through SHA-256 once.
 *
 * Options: --rounds N (1000), --sites N (3), --dir DIR (a temp dir, removed unless --keep),
 * --database-url URL (PostgreSQL; default embedded PGlite).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  builtinModelSpec,
  createCsr,
  generateKeyWrapKeyPair,
  generateSigningKeyPair,
  initDevPki,
  sha256Hex,
  silentLogger,
} from '@radfed/shared';
import { PresetAggregators } from '../aggregation/registry.js';
import { startCoordinator } from '../app.js';
import { LocalBlobStore } from '../blobs/local-blob-store.js';
import { loadCoordinatorConfig } from '../config/config.js';
import { FederationService } from '../federations/service.js';
import { Ledger } from '../ledger/ledger.js';
import { loadCoordinatorSigningKey } from '../ledger/signing-key.js';
import { openDatabase } from '../store/client.js';
import { type BenchSite, writeSealedRound } from './sealed-rounds.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');
const CHILD = join(here, 'audit-child.ts');
const TARGET_VERIFY_S = 60;

interface StepResult {
  step: string;
  ms: number;
  peakRssMiB: number;
  [k: string]: unknown;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '1000' },
      sites: { type: 'string', default: '3' },
      dir: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'database-url': { type: 'string' },
    },
  });
  const rounds = Number(values.rounds);
  const siteCount = Number(values.sites);
  const dir = values.dir ? resolve(values.dir) : mkdtempSync(join(tmpdir(), 'radfed-bench-audit-'));
  const say = (msg: string) => process.stdout.write(`${msg}\n`);
  const config = loadCoordinatorConfig(
    {
      dataDir: join(dir, 'coordinator'),
      port: 0,
      tickMs: 10_000, // the bench drives the engine itself
      ...(values['database-url'] ? { databaseUrl: values['database-url'] } : {}),
    },
    {},
  );
  // Build the store offline, then serve it: PGlite admits one process at a time.
  const pki = await initDevPki(config.pkiDir);
  const ledger = new Ledger({ signingKey: await loadCoordinatorSigningKey(config.pkiDir) });
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: join(config.dataDir, 'db'),
  });
  const blobs = new LocalBlobStore({ root: config.blobDir });
  const aggregators = new PresetAggregators(database.db);
  const spec = builtinModelSpec();
  let fedId: string;
  let generateS: number;
  try {
    const federations = new FederationService(database.db, pki.ca, ledger);
    const fed = await federations.create({
      name: 'bench-audit',
      modelSpec: spec,
      hePreset: 'plaintext',
      minSites: siteCount,
      roundDeadlineSeconds: 7 * 24 * 3600,
      maxSamplesPerSite: 1000,
    });
    fedId = fed.id;
    const sites: BenchSite[] = [];
    for (let i = 0; i < siteCount; i++) {
      const { token } = await federations.invite(fed.id, `site-${i}`);
      const signing = generateSigningKeyPair();
      const { site } = await federations.enrol({
        token,
        csrPem: (await createCsr({ commonName: `site-${i}` })).csrPem,
        signingPublicKey: signing.publicKeyRaw,
        keyWrapPublicKey: generateKeyWrapKeyPair().publicKeyRaw,
        agentVersion: 'bench',
      });
      sites.push({
        id: site.id,
        signingKeyPem: signing.privateKeyPem,
        datasetCommitment: sha256Hex(`dataset-${i}`),
      });
    }
    const aggregator = await aggregators.forFederation(fed);
    say(
      `RadFed audit benchmark: ${rounds} rounds x ${siteCount} sites, model ${spec.architecture} ` +
        `(${fed.parameterCount} shared parameters, ${(aggregator.updateBytes(fed.parameterCount) / 2 ** 20).toFixed(2)} MiB per update), ` +
        `${aggregator.encoding} aggregator, ${database.driver}, ${cpus().length} cores, Node ${process.version}`,
    );
    const values64 = new Float64Array(fed.parameterCount);
    const samples = (i: number) => 50 + i * 10;
    const generated = performance.now();
    for (let r = 1; r <= rounds; r++) {
      await writeSealedRound({
        db: database.db,
        blobs,
        ledger,
        aggregator,
        federation: fed,
        sites,
        samples,
        // n_i * w_i, different in every round and site.
        update: (round, i) => {
          for (let k = 0; k < values64.length; k++)
            values64[k] = samples(i) * Math.sin(k * 0.001 + round * 0.37 + i);
          return new Uint8Array(values64.buffer.slice(0));
        },
      });
      if (r % 100 === 0 || r === rounds) {
        say(
          `  wrote ${r}/${rounds} sealed rounds in ${((performance.now() - generated) / 1000).toFixed(0)} s`,
        );
      }
    }
    generateS = (performance.now() - generated) / 1000;
  } finally {
    await aggregators.close();
    await database.close();
  }

  const coord = await startCoordinator(config, silentLogger);
  try {
    const out = join(dir, 'bench-audit.ndjson');
    const exported = await child(['export', `127.0.0.1:${coord.port}`, config.pkiDir, fedId, out]);
    const size = statSync(out).size;
    const verified = await child(['verify', out]);
    if (!verified.ok || verified.recomputed !== rounds) {
      throw new Error(`verify did not pass: ${JSON.stringify(verified)}`);
    }
    const baselineMs = await hashFile(out);

    const mib = size / 2 ** 20;
    say('');
    say(`setup, not measured: writing ${rounds} sealed rounds took ${generateS.toFixed(1)} s`);
    say(
      `export file: ${mib.toFixed(0)} MiB, ${exported.entries} ledger entries, ${exported.updates} updates`,
    );
    say('');
    say('step                                  time      peak RSS   throughput    vs baseline');
    const line = (name: string, ms: number, rss: number | undefined) =>
      say(
        `${name.padEnd(36)}  ${(ms / 1000).toFixed(1).padStart(6)} s  ${rss === undefined ? '         -' : `${rss.toFixed(0).padStart(6)} MiB`}  ${(mib / (ms / 1000)).toFixed(0).padStart(6)} MiB/s  ${(ms / baselineMs).toFixed(2).padStart(8)}x`,
      );
    line('baseline: read + sha256 the export', baselineMs, undefined);
    line('radfed audit export (AuditService)', exported.ms, exported.peakRssMiB);
    line('radfed audit verify (offline)', verified.ms, verified.peakRssMiB);
    say('');
    const verifyS = verified.ms / 1000;
    say(
      `verify: ${verified.recomputed}/${verified.sealed} aggregates recomputed exactly, ${verified.entries} entries checked, ` +
        `${verifyS.toFixed(1)} s against a target of ${TARGET_VERIFY_S} s on 2 cores: ${verifyS < TARGET_VERIFY_S ? 'met' : 'NOT met'}` +
        ` (${(verifyS / TARGET_VERIFY_S).toFixed(2)} of the target)`,
    );
    return 0;
  } finally {
    await coord.stop();
    if (!values.keep && !values.dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs one measured step in a fresh Node process and returns its JSON line. */
function child(args: string[]): Promise<StepResult> {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${args[0]} failed (exit ${code})`));
      else resolvePromise(JSON.parse(out.trim().split('\n').at(-1)!) as StepResult);
    });
  });
}

/** The floor: stream the file through SHA-256 once. */
async function hashFile(path: string): Promise<number> {
  const started = performance.now();
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }))
    hash.update(chunk as Buffer);
  hash.digest();
  return performance.now() - started;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `bench:audit failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
