/**
 * `pnpm bench:audit`: time and peak memory to export and to verify a federation's audit trail.
 *
 * Builds, in-process, a real coordinator (gRPC over TLS, the configured database, local blob files)
 * with a 3-site federation and N sealed rounds (default 1000) of signed updates, generated straight
 * through the round engine (no training) with every update retained. Then, each in its own process
 * so time and peak RSS are its own: `radfed audit export` (through AuditService, as an auditor) and
 * `radfed audit verify` (offline). The baseline, measured in the same run, is the floor for any
 * verifier: streaming the export file from disk through SHA-256 once.
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
  type SignedUpdateFacts,
  sha256Hex,
  signedUpdateMessage,
  signUpdate,
  silentLogger,
} from '@radfed/shared';
import { startCoordinator } from '../app.js';
import { loadCoordinatorConfig } from '../config/config.js';
import * as roundQ from '../store/queries/rounds.js';

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
  const coord = await startCoordinator(config, silentLogger);
  try {
    const spec = builtinModelSpec();
    const fed = await coord.federations.create({
      name: 'bench-audit',
      modelSpec: spec,
      hePreset: 'plaintext',
      minSites: siteCount,
      roundDeadlineSeconds: 7 * 24 * 3600,
      maxSamplesPerSite: 1000,
    });
    const sites = [];
    for (let i = 0; i < siteCount; i++) {
      const { token } = await coord.federations.invite(fed.id, `site-${i}`);
      const signing = generateSigningKeyPair();
      const { site } = await coord.federations.enrol({
        token,
        csrPem: (await createCsr({ commonName: `site-${i}` })).csrPem,
        signingPublicKey: signing.publicKeyRaw,
        keyWrapPublicKey: generateKeyWrapKeyPair().publicKeyRaw,
        agentVersion: 'bench',
      });
      sites.push({ id: site.id, key: signing.privateKeyPem, commitment: sha256Hex(`dataset-${i}`) });
    }
    say(
      `RadFed audit benchmark: ${rounds} rounds x ${siteCount} sites, model ${spec.architecture} ` +
        `(${fed.parameterCount} shared parameters, ${((fed.parameterCount * 8) / 2 ** 20).toFixed(2)} MiB per update), ` +
        `plaintext aggregator, ${coord.database.driver}, ${cpus().length} cores, Node ${process.version}`,
    );

    // Generate: each round opens, every site submits a signed update, the last one seals it.
    const generated = performance.now();
    await coord.engine.schedule(fed.id, rounds);
    const values64 = new Float64Array(fed.parameterCount);
    for (let r = 1; r <= rounds; r++) {
      await coord.engine.tick();
      const [round] = (await roundQ.listRoundsInStates(coord.database.db, ['open'])).filter(
        (x) => x.federationId === fed.id,
      );
      if (round?.number !== r) throw new Error(`round ${r} did not open`);
      for (const [i, s] of sites.entries()) {
        const samples = 50 + i * 10;
        for (let k = 0; k < values64.length; k++) values64[k] = samples * Math.sin(k * 0.001 + r * 0.37 + i);
        const update = new Uint8Array(values64.buffer.slice(0));
        const facts: SignedUpdateFacts = {
          roundId: round.id,
          modelVersion: round.modelVersion ?? 0,
          updateDigest: sha256Hex(update),
          datasetCommitment: s.commitment,
          metrics: { loss: 1 / r },
          sampleCount: samples,
        };
        await coord.engine.submit({
          roundId: round.id,
          siteId: s.id,
          modelVersion: facts.modelVersion,
          update,
          digest: facts.updateDigest,
          sampleCount: samples,
          metrics: facts.metrics,
          provenance: {
            datasetCommitment: s.commitment,
            signedPayload: signedUpdateMessage(facts).toString('utf8'),
            siteSignature: signUpdate(s.key, facts).toString('base64'),
          },
        });
      }
      if (r % 100 === 0 || r === rounds) {
        const s = (performance.now() - generated) / 1000;
        say(`  generated ${r}/${rounds} sealed rounds in ${s.toFixed(0)} s`);
      }
    }
    const generateS = (performance.now() - generated) / 1000;

    const out = join(dir, 'bench-audit.ndjson');
    const exported = await child([
      'export',
      `127.0.0.1:${coord.port}`,
      config.pkiDir,
      fed.id,
      out,
    ]);
    const size = statSync(out).size;
    const verified = await child(['verify', out]);
    if (!verified.ok || verified.recomputed !== rounds) {
      throw new Error(`verify did not pass: ${JSON.stringify(verified)}`);
    }
    const baselineMs = await hashFile(out);

    const mib = size / 2 ** 20;
    say('');
    say(`generate ${rounds} sealed rounds (not measured work; setup): ${generateS.toFixed(1)} s`);
    say(`export file: ${mib.toFixed(0)} MiB, ${exported.entries} ledger entries, ${exported.updates} updates`);
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
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  hash.digest();
  return performance.now() - started;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench:audit failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
