/**
 * The round engine's contract over the store: one suite, run against PGlite and PostgreSQL. It
 * drives the real RoundEngine and FederationService over a real database and blob directory and
 * moves the clock itself. No test depends on another: each makes its own federation and clock, and
 * the crash test, which kills a process mid-federation with SIGKILL and reopens what it left, gets a
 * database of its own.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type DatabaseHandle,
  federationQueries,
  LocalBlobStore,
  outboxQueries,
  roundQueries,
} from '@radfed/coordinator/testing';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  createCsr,
  generateKeyWrapKeyPair,
  generateSigningKeyPair,
} from '@radfed/shared';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  buildEngine,
  enrolSite,
  TestClock,
  tinySpec,
  plainUpdate as update,
} from '../support/round-engine.js';
import type { StoreKind, TestStore } from '../support/stores.js';

const CRASH_CHILD = join(import.meta.dirname, 'round-engine-crash-child.ts');

/** Runs the crash child over `store` and `blobDir`, and kills it with SIGKILL once it is ready. */
async function runAndKill(store: TestStore, blobDir: string): Promise<void> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CRASH_CHILD, JSON.stringify({ database: store.options, blobDir })],
    { cwd: import.meta.dirname, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  );
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      if (output.includes('ready\n')) resolve();
    });
    void exited.then((how) =>
      reject(new Error(`the crash child exited (${how}) before it was ready:\n${output}`)),
    );
  });
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
}

export function roundEngineContract(kind: StoreKind): void {
  describe(`round engine over the store: ${kind.name}`, () => {
    let store: TestStore;
    let handle: DatabaseHandle;
    let blobDir: string;
    let clock: TestClock;
    let ca: CertificateAuthority;

    const build = (h: DatabaseHandle) => buildEngine(h, { blobDir, ca, clock });
    const advance = (ms: number) => clock.advance(ms);

    beforeAll(async () => {
      ca = await createCertificateAuthority({});
      store = await kind.create();
      handle = await store.open();
      blobDir = mkdtempSync(join(tmpdir(), 'radfed-blobs-'));
    });

    // Each test makes its own federation (names differ) and its own clock, so no test relies on
    // another's rows or on running after it; the crash test gets a database of its own.
    beforeEach(() => {
      clock = new TestClock();
    });

    afterAll(async () => {
      await handle?.close();
      await store?.cleanup();
      rmSync(blobDir, { recursive: true, force: true });
    });

    it('creates a federation with a seeded version 0 and refuses a duplicate name', async () => {
      const { feds } = build(handle);
      const fed = await feds.create({
        name: 'fed-a',
        modelSpec: tinySpec(),
        minSites: 2,
        roundDeadlineSeconds: 60,
        maxSamplesPerSite: 1000,
      });
      expect(fed.currentModelVersion).toBe(0);
      expect(fed.parameterCount).toBe(132160);
      expect(await federationQueries.getModelVersion(handle.db, fed.id, 0)).toMatchObject({
        version: 0,
        blobKey: null,
      });
      await expect(
        feds.create({
          name: 'fed-a',
          modelSpec: tinySpec(),
          minSites: 2,
          roundDeadlineSeconds: 60,
          maxSamplesPerSite: 1000,
        }),
      ).rejects.toThrow(/already exists/);
      await expect(
        feds.create({
          name: 'bad',
          modelSpec: tinySpec(),
          minSites: 0,
          roundDeadlineSeconds: 60,
          maxSamplesPerSite: 1,
        }),
      ).rejects.toThrow(/minSites/);
    });

    it('enrols with a single-use, expiring token', async () => {
      const { feds } = build(handle);
      await feds.create({
        name: 'fed-tokens',
        modelSpec: tinySpec(),
        minSites: 2,
        roundDeadlineSeconds: 60,
        maxSamplesPerSite: 1000,
      });
      const { token } = await feds.invite('fed-tokens', 'site-x', 120);
      const csr = await createCsr({ commonName: 'x' });
      const keys = {
        signingPublicKey: generateSigningKeyPair().publicKeyRaw,
        keyWrapPublicKey: generateKeyWrapKeyPair().publicKeyRaw,
      };
      const res = await feds.enrol({ token, csrPem: csr.csrPem, ...keys });
      expect(res.site.state).toBe('enrolled');
      await expect(feds.enrol({ token, csrPem: csr.csrPem, ...keys })).rejects.toThrow(/already used/);
      const late = await feds.invite('fed-tokens', 'site-y', 60);
      advance(61_000);
      await expect(feds.enrol({ token: late.token, csrPem: csr.csrPem, ...keys })).rejects.toThrow(/expired/);
      await expect(feds.enrol({ token: 'rfd_nope', csrPem: csr.csrPem, ...keys })).rejects.toThrow(
        /not valid/,
      );
    });

    it('opens at quorum, folds each update once, and seals into the next model version', async () => {
      const { engine, feds, blobs } = build(handle);
      const fed = await feds.create({
        name: 'fed-b',
        modelSpec: tinySpec(),
        // The engine here folds in plaintext; HE folding is covered by encrypted-aggregation.test.ts.
        hePreset: 'plaintext',
        minSites: 2,
        roundDeadlineSeconds: 60,
        maxSamplesPerSite: 1000,
      });
      const [r1] = await engine.schedule(fed.id, 2);
      await engine.tick();
      expect((await roundQueries.getRound(handle.db, r1!.id))!.state).toBe('scheduled'); // no sites yet
      const a = await enrolSite(feds, fed.id, 'a');
      const b = await enrolSite(feds, fed.id, 'b');
      await engine.tick();
      const open = (await roundQueries.getRound(handle.db, r1!.id))!;
      expect(open.state).toBe('open');
      expect(open.modelVersion).toBe(0);
      const P = fed.parameterCount;
      const ua = update(P, 1, 10);
      await engine.submit({
        roundId: open.id,
        siteId: a.site.id,
        modelVersion: 0,
        update: ua,
        digest: 'da',
        sampleCount: 10,
        metrics: { loss: 1 },
      });
      const dup = await engine.submit({
        roundId: open.id,
        siteId: a.site.id,
        modelVersion: 0,
        update: ua,
        digest: 'da',
        sampleCount: 10,
        metrics: { loss: 1 },
      });
      expect(dup.duplicate).toBe(true);
      await expect(
        engine.submit({
          roundId: open.id,
          siteId: a.site.id,
          modelVersion: 0,
          update: ua,
          digest: 'other',
          sampleCount: 10,
          metrics: {},
        }),
      ).rejects.toThrow(/different update/);
      await engine.submit({
        roundId: open.id,
        siteId: b.site.id,
        modelVersion: 0,
        update: update(P, 3, 30),
        digest: 'db',
        sampleCount: 30,
        metrics: { loss: 3 },
      });
      const sealed = (await roundQueries.getRound(handle.db, open.id))!;
      expect(sealed.state).toBe('sealed');
      expect(sealed.totalSamples).toBe(40);
      expect(sealed.resultModelVersion).toBe(1);
      const mv = (await federationQueries.getModelVersion(handle.db, fed.id, 1))!;
      const sum = new Float64Array((await blobs.get(mv.blobKey!)).slice().buffer);
      expect(sum[0]).toBe(1 * 10 + 3 * 30); // weighted sum; sites divide by 40
      expect(mv.meanLoss).toBeCloseTo((1 * 10 + 3 * 30) / 40);
      expect((await federationQueries.getFederation(handle.db, fed.id))!.currentModelVersion).toBe(1);
      await engine.tick(); // round 2 opens on version 1
      const r2 = (await roundQueries.listRounds(handle.db, fed.id))[1]!;
      expect(r2).toMatchObject({ state: 'open', modelVersion: 1 });
    });

    it('fails a round below quorum at its deadline with a reason, and refuses late updates', async () => {
      const { engine, feds } = build(handle);
      const fed = await feds.create({
        name: 'fed-c',
        modelSpec: tinySpec(),
        // The engine here folds in plaintext; HE folding is covered by encrypted-aggregation.test.ts.
        hePreset: 'plaintext',
        minSites: 2,
        roundDeadlineSeconds: 30,
        maxSamplesPerSite: 1000,
      });
      const a = await enrolSite(feds, fed.id, 'a');
      await enrolSite(feds, fed.id, 'b');
      const [r] = await engine.schedule(fed.id, 1);
      await engine.tick();
      await engine.submit({
        roundId: r!.id,
        siteId: a.site.id,
        modelVersion: 0,
        update: update(fed.parameterCount, 1, 5),
        digest: 'x',
        sampleCount: 5,
        metrics: {},
      });
      advance(31_000);
      await engine.tick();
      const failed = (await roundQueries.getRound(handle.db, r!.id))!;
      expect(failed.state).toBe('failed');
      expect(failed.failureReason).toMatch(
        /only 1 of the 2 required sites submitted before the deadline \(0 declined, 1 silent\)/,
      );
      const parts = await roundQueries.listParticipants(handle.db, r!.id);
      expect(parts.map((p) => p.state).sort()).toEqual(['missed', 'submitted']);
      await expect(
        engine.submit({
          roundId: r!.id,
          siteId: a.site.id,
          modelVersion: 0,
          update: update(fed.parameterCount, 1, 5),
          digest: 'y',
          sampleCount: 5,
          metrics: {},
        }),
      ).rejects.toThrow(/different update|failed/);
    });

    it('seals at quorum after the deadline when a site stays silent', async () => {
      const { engine, feds } = build(handle);
      const fed = await feds.create({
        name: 'fed-d',
        modelSpec: tinySpec(),
        // The engine here folds in plaintext; HE folding is covered by encrypted-aggregation.test.ts.
        hePreset: 'plaintext',
        minSites: 2,
        roundDeadlineSeconds: 30,
        maxSamplesPerSite: 1000,
      });
      const sites = [
        await enrolSite(feds, fed.id, 'a'),
        await enrolSite(feds, fed.id, 'b'),
        await enrolSite(feds, fed.id, 'c'),
      ];
      const [r] = await engine.schedule(fed.id, 1);
      await engine.tick();
      for (const s of sites.slice(0, 2)) {
        await engine.submit({
          roundId: r!.id,
          siteId: s.site.id,
          modelVersion: 0,
          update: update(fed.parameterCount, 1, 2),
          digest: s.site.id,
          sampleCount: 2,
          metrics: {},
        });
      }
      expect((await roundQueries.getRound(handle.db, r!.id))!.state).toBe('open');
      advance(31_000);
      await engine.tick();
      expect((await roundQueries.getRound(handle.db, r!.id))!).toMatchObject({
        state: 'sealed',
        resultModelVersion: 1,
        totalSamples: 4,
      });
    });

    it('keeps state and unpublished events across a crash (SIGKILL) and reopens them in order', async () => {
      const crashed = await kind.create();
      const crashBlobs = mkdtempSync(join(tmpdir(), 'radfed-blobs-'));
      try {
        await runAndKill(crashed, crashBlobs);
        const reopened = await crashed.open();
        try {
          await expectCrashSurvivors(reopened, new LocalBlobStore({ root: crashBlobs }));
        } finally {
          await reopened.close();
        }
      } finally {
        await crashed.cleanup();
        rmSync(crashBlobs, { recursive: true, force: true });
      }
    }, 180_000); // two processes open the database, and one of them starts from TypeScript
  });
}

/** What the crash child committed before SIGKILL: its rounds, model version, sum and outbox rows. */
async function expectCrashSurvivors(handle: DatabaseHandle, blobs: LocalBlobStore): Promise<void> {
  const fed = (await federationQueries.getFederationByName(handle.db, 'fed-crash'))!;
  expect(fed.currentModelVersion).toBe(1);
  const rounds = await roundQueries.listRounds(handle.db, fed.id);
  expect(rounds.map((r) => [r.state, r.modelVersion])).toEqual([
    ['sealed', 0],
    ['open', 1],
  ]);
  expect(rounds[0]!.totalSamples).toBe(20);
  const mv = (await federationQueries.getModelVersion(handle.db, fed.id, 1))!;
  const sum = new Float64Array((await blobs.get(mv.blobKey!)).slice().buffer);
  expect(sum[0]).toBe(1 * 10 + 2 * 10);

  const events = await outboxQueries.fetchUnpublished(handle.db, 10_000);
  const topics = events.map((e) => e.topic);
  expect(topics.filter((t) => t === 'round.update_accepted')).toHaveLength(2);
  expect(topics.indexOf('round.opened')).toBeLessThan(topics.indexOf('round.sealed'));
  expect(topics.lastIndexOf('round.opened')).toBeGreaterThan(topics.indexOf('round.sealed'));
  const ids = events.map((e) => e.id);
  expect([...ids].sort((x, y) => x - y)).toEqual(ids);
  await outboxQueries.markPublished(handle.db, ids.slice(0, 3));
  expect((await outboxQueries.fetchUnpublished(handle.db, 10_000)).map((e) => e.id)).toEqual(ids.slice(3));
}
