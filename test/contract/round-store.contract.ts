/**
 * The store + round-engine contract: one suite, run against PGlite and PostgreSQL. It drives the
 * real RoundEngine and FederationService over a real database and blob directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type DatabaseHandle,
  FederationService,
  federationQueries,
  Ledger,
  LocalBlobStore,
  outboxQueries,
  PlaintextAggregator,
  RoundEngine,
  roundQueries,
  singleAggregator,
} from '@radfed/coordinator/testing';
import {
  builtinModelSpec,
  createCertificateAuthority,
  createCsr,
  generateKeyWrapKeyPair,
  generateSigningKeyPair,
  silentLogger,
} from '@radfed/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

export interface StoreHarness {
  open(): Promise<DatabaseHandle>;
  cleanup(): Promise<void>;
}

const tinySpec = () => ({ ...builtinModelSpec('dense-ae-32') });

export function roundStoreContract(name: string, makeHarness: () => Promise<StoreHarness>): void {
  describe(`round store contract: ${name}`, () => {
    let harness: StoreHarness;
    let handle: DatabaseHandle;
    let blobDir: string;
    let now = new Date('2026-01-01T00:00:00Z');
    let ca: { certPem: string; keyPem: string };
    const coordinatorKey = generateSigningKeyPair();

    const build = (h: DatabaseHandle) => {
      const blobs = new LocalBlobStore({ root: blobDir });
      const ledger = new Ledger({
        signingKey: {
          privateKeyPem: coordinatorKey.privateKeyPem,
          publicKeyRaw: coordinatorKey.publicKeyRaw,
        },
        now: () => now,
      });
      const engine = new RoundEngine({
        db: h.db,
        blobs,
        aggregators: singleAggregator(new PlaintextAggregator()),
        ledger,
        log: silentLogger,
        now: () => now,
      });
      const feds = new FederationService(
        h.db,
        ca,
        ledger,
        () => {},
        () => now,
      );
      return { engine, feds, blobs };
    };

    const enrolSite = async (feds: FederationService, fed: string, site: string) => {
      const { token } = await feds.invite(fed, site);
      const csr = await createCsr({ commonName: site });
      return feds.enrol({
        token,
        csrPem: csr.csrPem,
        signingPublicKey: generateSigningKeyPair().publicKeyRaw,
        keyWrapPublicKey: generateKeyWrapKeyPair().publicKeyRaw,
      });
    };

    const update = (params: number, value: number, n: number) => {
      const a = new Float64Array(params).fill(value * n);
      return new Uint8Array(a.buffer);
    };

    beforeAll(async () => {
      ca = await createCertificateAuthority({});
      harness = await makeHarness();
      handle = await harness.open();
      blobDir = mkdtempSync(join(tmpdir(), 'radfed-blobs-'));
    });

    afterAll(async () => {
      await handle?.close();
      await harness?.cleanup();
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
      const { token } = await feds.invite('fed-a', 'site-x', 120);
      const csr = await createCsr({ commonName: 'x' });
      const keys = {
        signingPublicKey: generateSigningKeyPair().publicKeyRaw,
        keyWrapPublicKey: generateKeyWrapKeyPair().publicKeyRaw,
      };
      const res = await feds.enrol({ token, csrPem: csr.csrPem, ...keys });
      expect(res.site.state).toBe('enrolled');
      await expect(feds.enrol({ token, csrPem: csr.csrPem, ...keys })).rejects.toThrow(/already used/);
      const late = await feds.invite('fed-a', 'site-y', 60);
      now = new Date(now.getTime() + 61_000);
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
      now = new Date(now.getTime() + 31_000);
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
      now = new Date(now.getTime() + 31_000);
      await engine.tick();
      expect((await roundQueries.getRound(handle.db, r!.id))!).toMatchObject({
        state: 'sealed',
        resultModelVersion: 1,
        totalSamples: 4,
      });
    });

    it('keeps state and unpublished events across a restart (crash)', async () => {
      const before = await outboxQueries.fetchUnpublished(handle.db, 10_000);
      expect(before.length).toBeGreaterThan(0);
      const topics = before.map((e) => e.topic);
      expect(topics).toContain('round.sealed');
      expect(topics.indexOf('round.opened')).toBeLessThan(topics.indexOf('round.sealed'));
      const ids = before.map((e) => e.id);
      expect([...ids].sort((x, y) => x - y)).toEqual(ids);
      await handle.close();
      handle = await harness.open();
      const after = await outboxQueries.fetchUnpublished(handle.db, 10_000);
      expect(after.map((e) => e.id)).toEqual(ids);
      await outboxQueries.markPublished(handle.db, ids.slice(0, 3));
      expect((await outboxQueries.fetchUnpublished(handle.db, 10_000)).length).toBe(ids.length - 3);
      const fed = (await federationQueries.getFederationByName(handle.db, 'fed-b'))!;
      expect(fed.currentModelVersion).toBe(1);
    });
  });
}
