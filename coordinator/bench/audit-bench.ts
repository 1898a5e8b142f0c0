/**
 * The audit benchmark's machinery (the entry point, `pnpm bench:audit`, is audit.ts beside it):
 * time and peak memory to export and to verify a federation's audit trail.
 *
 * Builds a coordinator's store (the configured database, local blob files, its dev PKI and ledger
 * key) holding a federation of N sites with R sealed rounds of signed updates, written in-process
 * through the store and the engine's own transitions and ledger records (see sealed-rounds.ts; no
 * training), folded with the federation's aggregator, every update retained. Then it starts a real coordinator (gRPC
 * over TLS) on that store and runs, each in its own process so time and peak RSS are its own:
 * `radfed audit export` (through AuditService, as an auditor) and `radfed audit verify` (offline).
 * The baseline, measured in the same run, is the floor for any verifier: streaming the export file
 * from disk through SHA-256 once.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  builtinModelSpec,
  createCsr,
  generateKeyWrapKeyPair,
  generateSigningKeyPair,
  hePreset,
  initDevPki,
  isEncrypted,
  presetHash,
  type QuantisationPlan,
  sha256Hex,
  silentLogger,
} from '@radfed/shared';
import { PresetAggregators } from '../src/aggregation/registry.js';
import { startCoordinator } from '../src/app.js';
import { LocalBlobStore } from '../src/blobs/local-blob-store.js';
import { loadCoordinatorConfig } from '../src/config/config.js';
import { FederationService } from '../src/federations/service.js';
import { federationHe } from '../src/federations/spec.js';
import { Ledger } from '../src/ledger/ledger.js';
import { loadCoordinatorSigningKey } from '../src/ledger/signing-key.js';
import { RoundEngine } from '../src/rounds/engine.js';
import { openDatabase } from '../src/store/client.js';
import { type BenchSite, writeKeyBundle, writeSealedRound } from './sealed-rounds.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const CHILD = join(here, 'audit-child.ts');
const TARGET_VERIFY_S = 60;

/** What an HE federation's sites need from the site-side HE code (which the coordinator cannot import). */
export interface BenchHe {
  keyId: string;
  publicParameters: Uint8Array;
  /** Encrypts one site's shared weights for upload, as its agent would. */
  encrypt(weights: Float32Array, sampleCount: number, plan: QuantisationPlan): Promise<Uint8Array>;
}

export interface AuditBenchOptions {
  rounds: number;
  sites: number;
  /** The federation's HE preset. */
  preset: string;
  /** Required for HE presets. */
  he?: BenchHe;
  /** Work directory (kept); default a temporary one, removed afterwards unless `keep`. */
  dir?: string;
  keep?: boolean;
  /** PostgreSQL URL of an empty database; default embedded PGlite. */
  databaseUrl?: string;
  say(line: string): void;
}

interface StepResult {
  step: string;
  ms: number;
  /** CPU time of all the step's threads. */
  cpuMs: number;
  peakRssMiB: number;
  [k: string]: unknown;
}

/** Runs the benchmark, printing through `say`; throws when verify does not pass. */
export async function runAuditBench(o: AuditBenchOptions): Promise<void> {
  const { rounds, say } = o;
  const dir = o.dir ? resolve(o.dir) : mkdtempSync(join(tmpdir(), 'radfed-bench-audit-'));
  const config = loadCoordinatorConfig(
    {
      dataDir: join(dir, 'coordinator'),
      port: 0,
      tickMs: 10_000, // nothing to schedule: the rounds are written, not run
      ...(o.databaseUrl ? { databaseUrl: o.databaseUrl } : {}),
    },
    {},
  );
  const preset = hePreset(o.preset);
  if (isEncrypted(preset) && !o.he) throw new Error(`preset ${o.preset} needs the site-side HE hooks`);
  try {
    // Build the store offline, then serve it: PGlite admits one process at a time.
    const { fedId, generateS } = await writeStore(o, config);
    const coord = await startCoordinator(config, silentLogger);
    let exported: StepResult;
    let verified: StepResult;
    const out = join(dir, 'bench-audit.ndjson');
    try {
      exported = await child(['export', `127.0.0.1:${coord.port}`, config.pkiDir, fedId, out]);
    } finally {
      await coord.stop();
    }
    const size = statSync(out).size;
    verified = await child(['verify', out]);
    if (!verified.ok || verified.recomputed !== rounds) {
      throw new Error(`verify did not pass: ${JSON.stringify(verified)}`);
    }
    const baseline = await hashFile(out);

    const mib = size / 2 ** 20;
    say('');
    say(`setup, not measured: writing ${rounds} sealed rounds took ${generateS.toFixed(1)} s`);
    say(
      `export file: ${mib.toFixed(0)} MiB, ${exported.entries} ledger entries, ${exported.updates} updates`,
    );
    say(`load average while measuring: ${loadavg()[0]!.toFixed(1)} (${cpus().length} cores)`);
    say('');
    // CPU time alongside wall time: on a shared machine wall time depends on what else runs, CPU
    // time much less; both are compared with the baseline measured in this run.
    say(
      'step                                  time      CPU   peak RSS   throughput  time vs base  CPU vs base',
    );
    const line = (name: string, ms: number, cpuMs: number, rss: number | undefined) =>
      say(
        `${name.padEnd(36)}  ${(ms / 1000).toFixed(1).padStart(6)} s ${(cpuMs / 1000).toFixed(1).padStart(6)} s  ${rss === undefined ? '         -' : `${rss.toFixed(0).padStart(6)} MiB`}  ${(mib / (ms / 1000)).toFixed(0).padStart(6)} MiB/s  ${(ms / baseline.ms).toFixed(2).padStart(11)}x  ${(cpuMs / baseline.cpuMs).toFixed(2).padStart(10)}x`,
      );
    line('baseline: read + sha256 the export', baseline.ms, baseline.cpuMs, undefined);
    line('radfed audit export (AuditService)', exported.ms, exported.cpuMs, exported.peakRssMiB);
    line('radfed audit verify (offline)', verified.ms, verified.cpuMs, verified.peakRssMiB);
    say('');
    const verifyS = verified.ms / 1000;
    say(
      `verify: ${verified.recomputed}/${verified.sealed} aggregates recomputed exactly, ${verified.entries} entries checked, ` +
        `${verifyS.toFixed(1)} s against a target of ${TARGET_VERIFY_S} s on 2 cores: ${verifyS < TARGET_VERIFY_S ? 'met' : 'NOT met'}` +
        ` (${(verifyS / TARGET_VERIFY_S).toFixed(2)} of the target)`,
    );
  } finally {
    if (!o.keep && !o.dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** Creates the federation, enrols the sites, publishes the HE key if any, writes the rounds. */
async function writeStore(
  o: AuditBenchOptions,
  config: ReturnType<typeof loadCoordinatorConfig>,
): Promise<{ fedId: string; generateS: number }> {
  const pki = await initDevPki(config.pkiDir);
  const ledger = new Ledger({ signingKey: await loadCoordinatorSigningKey(config.pkiDir) });
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: join(config.dataDir, 'db'),
  });
  const blobs = new LocalBlobStore({ root: config.blobDir });
  const aggregators = new PresetAggregators(database.db);
  try {
    const spec = builtinModelSpec();
    const federations = new FederationService(database.db, pki.ca, ledger);
    let fed = await federations.create({
      name: 'bench-audit',
      modelSpec: spec,
      hePreset: o.preset,
      minSites: o.sites,
      roundDeadlineSeconds: 7 * 24 * 3600,
      maxSamplesPerSite: 1000,
    });
    const sites: BenchSite[] = [];
    for (let i = 0; i < o.sites; i++) {
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
    const store = { db: database.db, blobs, ledger, federation: fed };
    if (o.he) {
      await writeKeyBundle(store, sites[0]!, {
        presetHash: presetHash(hePreset(o.preset)),
        keyId: o.he.keyId,
        publicParameters: o.he.publicParameters,
      });
      fed = (await federations.resolve(fed.id))!;
    }
    const aggregator = await aggregators.forFederation(fed);
    const engine = new RoundEngine({ db: database.db, blobs, aggregators, ledger, log: silentLogger });
    o.say(
      `RadFed audit benchmark: ${o.rounds} rounds x ${o.sites} sites, model ${spec.architecture} ` +
        `(${fed.parameterCount} shared parameters, ${(aggregator.updateBytes(fed.parameterCount) / 2 ** 20).toFixed(2)} MiB per update), ` +
        `preset ${o.preset} (${aggregator.encoding}), ${database.driver}, ${cpus().length} cores, Node ${process.version}`,
    );
    const samples = (i: number) => 50 + i * 10;
    // Plaintext: n_i * w_i as float64, different in every round and site. HE: each site's update is
    // encrypted once and re-sent every round (verifying costs the same whatever the plaintext).
    const weights = (round: number, i: number) => {
      const w = new Float64Array(fed.parameterCount);
      for (let k = 0; k < w.length; k++) w[k] = Math.sin(k * 0.001 + round * 0.37 + i);
      return w;
    };
    const encrypted: Uint8Array[] = [];
    if (o.he) {
      const { plan } = federationHe(fed);
      for (const [i] of sites.entries()) {
        encrypted.push(await o.he.encrypt(Float32Array.from(weights(1, i)), samples(i), plan));
      }
    }
    const update = (round: number, i: number) => {
      if (o.he) return encrypted[i]!;
      const w = weights(round, i);
      for (let k = 0; k < w.length; k++) w[k]! *= samples(i);
      return new Uint8Array(w.buffer);
    };
    const sums = new Map<string, Uint8Array>();
    const started = performance.now();
    for (let r = 1; r <= o.rounds; r++) {
      await writeSealedRound({ ...store, engine, aggregator, sites, samples, update, sums });
      if (r % 100 === 0 || r === o.rounds) {
        o.say(
          `  wrote ${r}/${o.rounds} sealed rounds in ${((performance.now() - started) / 1000).toFixed(0)} s`,
        );
      }
    }
    return { fedId: fed.id, generateS: (performance.now() - started) / 1000 };
  } finally {
    await aggregators.close();
    await database.close();
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
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    proc.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${args[0]} failed (exit ${code})`));
      else resolvePromise(JSON.parse(out.trim().split('\n').at(-1)!) as StepResult);
    });
  });
}

/** The floor: stream the file through SHA-256 once (wall and CPU time of this process, in ms). */
async function hashFile(path: string): Promise<{ ms: number; cpuMs: number }> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }))
    hash.update(chunk as Buffer);
  hash.digest();
  const used = process.cpuUsage(cpu);
  return { ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000 };
}
