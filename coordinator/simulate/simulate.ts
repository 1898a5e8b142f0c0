/**
 * `radfed simulate`: a whole federation in one process, on the coordinator's real code paths: its
 * store (PGlite, in memory or in a folder), round engine, aggregator (HE by default) and signed
 * ledger, with N virtual sites in place of agents, without gRPC or TLS.
 *
 * Each virtual site is enrolled as a real one is (invite, CSR signed by the CA, Ed25519 signing key),
 * and in each round runs a light trainer that returns seeded random weights, encrypts them with the
 * site-side HE code (`@radfed/shared/he-site`, on a pool of worker threads sized to the cores), signs
 * what it uploads and submits it to the engine, which folds it, records it in the ledger and seals
 * the round at quorum. Sites that fail (a seeded `--dropout` share: they decline, as a failing agent
 * does) or run past the deadline are dropouts; the round then closes at its deadline, reached on a
 * virtual clock rather than waited for.
 *
 * It lives outside src/ for the reason the benchmarks do: it plays the sites too, and so holds the
 * federation's HE secret key, which the coordinator's own code may never reach
 * (aggregation/public-only.test.ts checks src/ for that). The coordinator server never loads it.
 *
 * Deterministic for a seed: which sites drop out, every site's weights and sample count, and the
 * order updates are folded in (sites compute in parallel but submit in site order). HE ciphertexts
 * are freshly random, as they must be; what they decrypt to is not.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  createCsr,
  generateKeyWrapKeyPair,
  generateSigningKeyPair,
  hePreset,
  initDevPki,
  isEncrypted,
  keyBundleStatement,
  presetHash,
  type SignedUpdateFacts,
  sha256Hex,
  sign,
  signedUpdateMessage,
  signUpdate,
  silentLogger,
} from '@radfed/shared';
import { type HeKeyMaterial, SiteHe } from '@radfed/shared/he-site';
import { PresetAggregators } from '../src/aggregation/registry.js';
import { LocalBlobStore } from '../src/blobs/local-blob-store.js';
import { RadFedError } from '../src/errors.js';
import { FederationService } from '../src/federations/service.js';
import { federationHe, newFederationModelSpec } from '../src/federations/spec.js';
import { Ledger } from '../src/ledger/ledger.js';
import { loadCoordinatorSigningKey } from '../src/ledger/signing-key.js';
import { RoundEngine } from '../src/rounds/engine.js';
import { openDatabase } from '../src/store/client.js';
import type { FederationRow } from '../src/store/queries/federations.js';
import * as keyQ from '../src/store/queries/keys.js';
import * as roundQ from '../src/store/queries/rounds.js';
import { exportFromStore } from './store-audit.js';

export interface SimulateOptions {
  sites: number;
  rounds: number;
  seed: number;
  /** Model architecture, as for `federations create --model`. */
  model?: string;
  hePreset: string;
  /** Quorum; default half the sites, rounded up. */
  minSites?: number;
  /** Seconds a site may take per round before it counts as timed out. */
  deadlineSeconds: number;
  /** Share of site-rounds that fail, chosen by the seed (0..1). */
  dropout: number;
  /** Share of site-rounds that run past the deadline, chosen by the seed (0..1, default 0). */
  stragglers?: number;
  /** HE worker threads; default the cores available. */
  threads?: number;
  /** Keep the store (PGlite folder, blobs, dev PKI) here; default a temporary folder, removed. */
  dir?: string;
  /** Write the federation's audit export here once the rounds are done. */
  exportPath?: string;
  /** One line per event worth telling (progress). */
  say(line: string): void;
}

export interface RoundReport {
  number: number;
  state: string;
  submitted: number;
  failed: number;
  timedOut: number;
  seconds: number;
  /** Seconds spent in the engine's submit (fold, blob, ledger) for this round's updates. */
  foldSeconds: number;
  updatesPerSecond: number;
  foldMiBPerSecond: number;
  peakRssMiB: number;
  /** sha256 of the sealed aggregate (the same for a seed under plaintext; fresh HE randomness otherwise). */
  aggregateDigest: string | null;
  failureReason?: string;
}

export interface SimulateReport {
  federationId: string;
  sites: number;
  rounds: RoundReport[];
  parameterCount: number;
  hePreset: string;
  encoding: string;
  updateBytes: number;
  threads: number;
  setupSeconds: number;
  peakRssMiB: number;
  database: string;
  dir?: string;
  export?: { path: string; entries: number; updates: number; bytes: number };
}

interface VirtualSite {
  index: number;
  id: string;
  name: string;
  signingKeyPem: string;
  datasetCommitment: string;
}

type Outcome =
  | { kind: 'update'; bytes: Uint8Array; samples: number; loss: number }
  | { kind: 'failed' | 'timed-out'; reason: string };

/** Runs the simulation; throws only for faults of the simulator itself (dropouts are reported). */
export async function simulate(o: SimulateOptions): Promise<SimulateReport> {
  const started = performance.now();
  const dir = o.dir ? resolve(o.dir) : mkdtempSync(join(tmpdir(), 'radfed-simulate-'));
  const rss = new PeakRss();
  const threads = o.threads ?? availableParallelism();
  const preset = hePreset(o.hePreset);
  const he = isEncrypted(preset) ? new SiteHe(threads) : undefined;
  const pkiDir = join(dir, 'pki');
  const pki = await initDevPki(pkiDir);
  const ledger = new Ledger({ signingKey: await loadCoordinatorSigningKey(pkiDir) });
  const database = await openDatabase({ dataDir: o.dir ? join(dir, 'db') : 'memory://' });
  const blobs = new LocalBlobStore({ root: join(dir, 'blobs') });
  const aggregators = new PresetAggregators(database.db);
  let skewMs = 0;
  const engine = new RoundEngine({
    db: database.db,
    blobs,
    aggregators,
    ledger,
    log: silentLogger,
    now: () => new Date(Date.now() + skewMs),
  });
  try {
    const federations = new FederationService(database.db, pki.ca, ledger);
    const modelSpec = newFederationModelSpec(o.model);
    let fed = await federations.create({
      name: `simulate-${o.seed}-${Date.now()}`,
      modelSpec,
      hePreset: o.hePreset,
      minSites: o.minSites ?? Math.ceil(o.sites / 2),
      maxSites: Math.max(o.sites, 2),
      // The round's own deadline is far off: rounds of many sites take long in real time, and the
      // deadline is reached on the virtual clock once every site has answered or timed out.
      roundDeadlineSeconds: 7 * 24 * 3600,
      maxSamplesPerSite: 1000,
    });
    const sites: VirtualSite[] = [];
    for (let i = 0; i < o.sites; i++) {
      const name = `site-${String(i).padStart(4, '0')}`;
      const { token } = await federations.invite(fed.id, name);
      const signing = generateSigningKeyPair();
      const { site } = await federations.enrol({
        token,
        csrPem: (await createCsr({ commonName: name })).csrPem,
        signingPublicKey: signing.publicKeyRaw,
        keyWrapPublicKey: generateKeyWrapKeyPair().publicKeyRaw,
        agentVersion: 'radfed-simulate',
      });
      sites.push({
        index: i,
        id: site.id,
        name,
        signingKeyPem: signing.privateKeyPem,
        datasetCommitment: sha256Hex(`simulate/${o.seed}/${name}`),
      });
    }
    let key: HeKeyMaterial | undefined;
    if (he) {
      key = await he.generateKeys(preset);
      await publishKeys(database.db, blobs, ledger, fed, sites[0]!, key);
      fed = (await federations.resolve(fed.id))!;
    }
    const aggregator = await aggregators.forFederation(fed);
    const { plan } = federationHe(fed);
    const updateBytes = aggregator.updateBytes(fed.parameterCount);
    const setupSeconds = (performance.now() - started) / 1000;
    o.say(
      `simulating ${o.sites} sites x ${o.rounds} rounds: ${modelSpec.architecture} (${fed.parameterCount} shared parameters), ` +
        `${preset.name} (${aggregator.encoding}, ${(updateBytes / 2 ** 20).toFixed(2)} MiB per update), quorum ${fed.minSites}, ` +
        `${threads} HE threads, ${database.driver}${o.dir ? ` in ${dir}` : ' in memory'}; setup ${setupSeconds.toFixed(1)} s`,
    );

    /** One site's work for a round: the light trainer, then encoding for the aggregator. */
    const train = async (site: VirtualSite, roundNumber: number): Promise<Outcome> => {
      const rng = new Rng(o.seed, roundNumber, site.index);
      if (rng.next() < o.dropout)
        return { kind: 'failed', reason: 'the virtual site failed (simulated dropout)' };
      const samples = 10 + Math.floor(rng.next() * 991);
      const weights = new Float32Array(fed.parameterCount);
      for (let k = 0; k < weights.length; k++) weights[k] = (rng.next() - 0.5) * 0.2;
      const loss = 1 / roundNumber + rng.next() * 0.1;
      if (he && key) {
        const enc = await he.encrypt(preset, key, weights, samples, plan);
        return { kind: 'update', bytes: enc.bytes, samples, loss };
      }
      const w = new Float64Array(weights.length);
      for (let k = 0; k < w.length; k++) w[k] = weights[k]! * samples;
      return { kind: 'update', bytes: new Uint8Array(w.buffer), samples, loss };
    };
    const withDeadline = (work: Promise<Outcome>): Promise<Outcome> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<Outcome>((r) => {
        timer = setTimeout(
          () => r({ kind: 'timed-out', reason: `no update within the ${o.deadlineSeconds} s deadline` }),
          o.deadlineSeconds * 1000,
        );
      });
      return Promise.race([
        work.catch((err: unknown) => ({ kind: 'failed' as const, reason: (err as Error).message })),
        late,
      ]).finally(() => clearTimeout(timer));
    };

    await engine.schedule(fed.id, o.rounds);
    const reports: RoundReport[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const roundStart = performance.now();
      rss.resetRound();
      await engine.tick();
      const round = (await roundQ.listRounds(database.db, fed.id)).find((x) => x.state === 'open');
      if (!round) throw new Error(`round ${r + 1} did not open`);
      const invited = new Set((await roundQ.listParticipants(database.db, round.id)).map((p) => p.siteId));
      const order = sites.filter((s) => invited.has(s.id));
      // Sites compute ahead, a bounded number at a time; updates reach the engine in site order.
      const window = Math.max(2, threads * 2);
      const pending: Promise<Outcome>[] = [];
      let next = 0;
      const launch = () => {
        while (next < order.length && pending.length - consumed < window) {
          pending.push(withDeadline(train(order[next]!, round.number)));
          next++;
        }
      };
      let consumed = 0;
      let submitted = 0;
      let failed = 0;
      let timedOut = 0;
      let foldMs = 0;
      launch();
      for (const [i, site] of order.entries()) {
        const outcome = await pending[i]!;
        consumed++;
        pending[i] = Promise.resolve(
          outcome.kind === 'update' ? { ...outcome, bytes: new Uint8Array() } : outcome,
        );
        launch();
        rss.sample();
        if (outcome.kind === 'update') {
          const digest = sha256Hex(outcome.bytes);
          const metrics = { loss: outcome.loss };
          const facts: SignedUpdateFacts = {
            roundId: round.id,
            modelVersion: round.modelVersion ?? 0,
            updateDigest: digest,
            datasetCommitment: site.datasetCommitment,
            metrics,
            sampleCount: outcome.samples,
          };
          const t0 = performance.now();
          const accepted = await engine
            .submit({
              roundId: round.id,
              siteId: site.id,
              modelVersion: facts.modelVersion,
              update: outcome.bytes,
              digest,
              sampleCount: outcome.samples,
              metrics,
              provenance: {
                datasetCommitment: site.datasetCommitment,
                signedPayload: signedUpdateMessage(facts).toString('utf8'),
                siteSignature: signUpdate(site.signingKeyPem, facts).toString('base64'),
              },
            })
            .then(
              () => true,
              (err: unknown) => {
                // Refused (as a real site's upload can be): that site is a dropout this round.
                if (!(err instanceof RadFedError)) throw err;
                o.say(`  ${site.name}: update refused: ${err.message}`);
                return false;
              },
            );
          foldMs += performance.now() - t0;
          if (accepted) submitted++;
          else failed++;
        } else if (outcome.kind === 'failed') {
          await engine.decline(round.id, site.id, outcome.reason);
          failed++;
        } else {
          timedOut++; // silent, as a site that never answers
        }
        if (order.length >= 200 && (i + 1) % 100 === 0 && i + 1 < order.length) {
          o.say(
            `  round ${round.number}: ${i + 1}/${order.length} sites answered, ${((performance.now() - roundStart) / 1000).toFixed(0)} s, RSS ${(process.memoryUsage.rss() / 2 ** 20).toFixed(0)} MiB`,
          );
        }
      }
      let closed = (await roundQ.getRound(database.db, round.id))!;
      if (closed.state === 'open') {
        // Silent sites left: the deadline is reached on the virtual clock instead of waited for.
        skewMs += Math.max(0, closed.deadlineAt!.getTime() - Date.now() - skewMs) + 1;
        await engine.tick();
        closed = (await roundQ.getRound(database.db, round.id))!;
      }
      const seconds = (performance.now() - roundStart) / 1000;
      const foldSeconds = foldMs / 1000;
      const report: RoundReport = {
        number: closed.number,
        state: closed.state,
        submitted,
        failed,
        timedOut,
        seconds,
        foldSeconds,
        updatesPerSecond: foldSeconds > 0 ? submitted / foldSeconds : 0,
        foldMiBPerSecond: foldSeconds > 0 ? (submitted * updateBytes) / 2 ** 20 / foldSeconds : 0,
        peakRssMiB: rss.roundPeakMiB(),
        aggregateDigest: closed.aggregateDigest,
        ...(closed.failureReason ? { failureReason: closed.failureReason } : {}),
      };
      reports.push(report);
      o.say(
        `round ${report.number}/${o.rounds} ${report.state}: ${submitted}/${order.length} sites submitted ` +
          `(${failed} failed, ${timedOut} timed out), ${seconds.toFixed(1)} s, ` +
          `engine submit (store, fold, ledger) ${report.updatesPerSecond.toFixed(1)} updates/s (${report.foldMiBPerSecond.toFixed(0)} MiB/s folded), ` +
          `peak RSS ${report.peakRssMiB.toFixed(0)} MiB${report.failureReason ? `: ${report.failureReason}` : ''}`,
      );
    }
    let exported: SimulateReport['export'];
    if (o.exportPath) {
      const summary = await exportFromStore(
        { db: database.db, blobs, ledger, federations, caCertPem: pki.ca.certPem },
        fed.id,
        resolve(o.exportPath),
      );
      exported = {
        path: summary.path,
        entries: summary.entries,
        updates: summary.updates,
        bytes: summary.bytes,
      };
      o.say(
        `audit export: ${summary.path} (${summary.entries} ledger entries, ${summary.updates} updates, ${(summary.bytes / 2 ** 20).toFixed(1)} MiB); check it with radfed audit verify ${summary.path}`,
      );
    }
    rss.sample();
    return {
      federationId: fed.id,
      sites: o.sites,
      rounds: reports,
      parameterCount: fed.parameterCount,
      hePreset: preset.name,
      encoding: aggregator.encoding,
      updateBytes,
      threads,
      setupSeconds,
      peakRssMiB: rss.peakMiB(),
      database: database.driver,
      ...(o.dir ? { dir } : {}),
      ...(exported ? { export: exported } : {}),
    };
  } finally {
    rss.stop();
    await engine.stop();
    await he?.close();
    await aggregators.close();
    await blobs.close();
    await database.close();
    if (!o.dir) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Publishes the federation's HE key bundle as key custody does (public parameters blob, bundle row,
 * `key_bundle.published` entry signed by the custodian). The virtual sites share the secret key in
 * this process, so no wrapped copies are made.
 */
async function publishKeys(
  db: import('../src/store/client.js').Db,
  blobs: LocalBlobStore,
  ledger: Ledger,
  fed: FederationRow,
  custodian: VirtualSite,
  key: HeKeyMaterial,
): Promise<void> {
  const hash = presetHash(federationHe(fed).preset);
  const blobKey = `keys/${fed.id}/${key.keyId}.public`;
  await blobs.put(blobKey, key.publicParameters);
  const claim = { federationId: fed.id, custodianSiteId: custodian.id, presetHash: hash, keyId: key.keyId };
  const signature = sign(custodian.signingKeyPem, keyBundleStatement(claim)).toString('base64');
  await db.transaction(async (tx) => {
    await keyQ.setKeyCustodian(tx, fed.id, custodian.id);
    await keyQ.insertKeyBundle(tx, {
      federationId: fed.id,
      custodianSiteId: custodian.id,
      presetHash: hash,
      publicParametersKey: blobKey,
      publicParametersDigest: key.keyId,
      custodianSignature: signature,
    });
    await ledger.append(tx, fed.id, 'key_bundle.published', {
      custodianSiteId: custodian.id,
      presetHash: hash,
      publicParametersDigest: key.keyId,
      custodianSignature: signature,
      wrappedForSiteIds: [],
    });
  });
}

/** splitmix32 seeded by (seed, round, site): the same stream for the same triple on any machine. */
class Rng {
  private state: number;
  constructor(seed: number, round: number, site: number) {
    this.state =
      (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(round, 0x85ebca6b) ^ Math.imul(site + 1, 0xc2b2ae35)) >>>
      0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x9e3779b9) | 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    return (z >>> 0) / 2 ** 32;
  }
}

/** The process's resident set: sampled on a timer and at each update, peak overall and per round. */
class PeakRss {
  private peak = 0;
  private round = 0;
  private readonly timer = setInterval(() => this.sample(), 100).unref();
  sample(): void {
    const now = process.memoryUsage.rss();
    if (now > this.peak) this.peak = now;
    if (now > this.round) this.round = now;
  }
  resetRound(): void {
    this.round = 0;
    this.sample();
  }
  roundPeakMiB(): number {
    this.sample();
    return this.round / 2 ** 20;
  }
  peakMiB(): number {
    return Math.max(this.peak, process.resourceUsage().maxRSS * 1024) / 2 ** 20;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}
