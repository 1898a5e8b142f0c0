/**
 * Encrypted aggregation against a real coordinator (in-process, gRPC over mutual TLS, PGlite, local
 * blobs) with agents driven through SiteClient and the site's own HE keyring and worker threads:
 * key custody (rounds wait for the keys, the custodian generates and wraps, late sites get wrapped
 * copies, a designated key holder takes over), every kind of bad ciphertext refused before the
 * running sum is touched, and the decrypted global model equal to float64 FedAvg within the stated
 * quantisation bound for 3 and for 50 sites.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import type { OperatorClient } from '@radfed/coordinator';
import { LocalBlobStore, roundQueries, waitFor } from '@radfed/coordinator/testing';
import { RoundState } from '@radfed/proto';
import {
  aggregateErrorBound,
  FRAME_HEADER_BYTES,
  type HePreset,
  hePreset,
  planQuantisation,
  type QuantisationPlan,
  updateFrameBytes,
} from '@radfed/shared';
import { type HeKeyMaterial, SiteHe } from '@radfed/shared/he-site';
import { testWeights as weights } from '@radfed/shared/testing';
import { TaskDeclinedError, updateSigner } from '@radfed/site-agent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestAgent as Agent, TestAgents } from '../support/agents.js';
import { type InProcessCoordinator, startInProcessCoordinator } from '../support/coordinator.js';
import { expectStatus } from '../support/status.js';

const bgv = hePreset('bgv-8192');
const LIMITS = { maxSamplesPerSite: 1000, maxAbsWeight: 4 };

describe('encrypted aggregation: key custody, bad ciphertexts, precision', () => {
  let coordinator: InProcessCoordinator;
  let blobs: LocalBlobStore;
  let agents: TestAgents;
  const cipher = new SiteHe(2);
  let op: OperatorClient;

  const newAgent = (fedId: string, name: string) => agents.enrol(fedId, name);
  const connect = (a: Agent) => a.connect();

  const upload = (
    a: Agent,
    roundId: string,
    data: Uint8Array,
    sampleCount: number,
    encoding = `he-${bgv.name}`,
  ) =>
    a.client.upload({
      roundId,
      modelVersion: 0,
      data,
      sampleCount,
      metrics: { loss: 1 },
      encoding,
      datasetCommitment: 'cd'.repeat(32),
      sign: updateSigner(a.id.signingKeyPem),
    });

  const createFederation = (name: string, minSites: number, maxSites: number) =>
    op.createFederation({ name, minSites, maxSites, roundDeadlineSeconds: 600, ...LIMITS });

  const openRound = async (fedId: string) => {
    const rounds = await waitFor(
      'the round to open',
      async () => {
        const rs = await op.listRounds(fedId);
        return rs[0]?.state === RoundState.ROUND_STATE_OPEN ? rs : undefined;
      },
      30_000,
    );
    return rounds[0]!;
  };

  /** Decrypts model version 1 with `a`'s key and checks it against float64 FedAvg of the inputs. */
  const checkPrecision = async (
    a: Agent,
    fedId: string,
    key: HeKeyMaterial,
    plan: QuantisationPlan,
    inputs: { w: Float32Array; n: number }[],
  ) => {
    const model = await a.client.downloadModel(fedId, 1);
    expect(model.header.encoding).toBe('he-bgv-8192');
    expect(model.header.siteCount).toBe(inputs.length);
    const total = inputs.reduce((s, x) => s + x.n, 0);
    expect(Number(model.header.totalSamples)).toBe(total);
    const P = model.header.parameterCount;
    const avg = await cipher.decryptAverage(bgv, key, model.data, P, total, inputs.length, plan);
    expect(avg.errorBound).toBe(aggregateErrorBound(plan, inputs.length, total));
    let max = 0;
    for (let j = 0; j < P; j++) {
      let fedavg = 0;
      for (const { w, n } of inputs) fedavg += n * w[j]!;
      max = Math.max(max, Math.abs(avg.weights[j]! - fedavg / total));
    }
    expect(max).toBeLessThanOrEqual(avg.errorBound);
    return { max, bound: avg.errorBound };
  };

  beforeAll(async () => {
    coordinator = await startInProcessCoordinator('he', { tickMs: 100 });
    op = coordinator.op;
    blobs = new LocalBlobStore({ root: coordinator.config.blobDir });
    agents = new TestAgents(coordinator, join(coordinator.dir, 'agents'), cipher);
  });

  afterAll(async () => {
    await agents?.closeAll();
    await cipher.close();
    await coordinator?.stop();
  });

  let fedId = '';
  let round = { id: '' };
  const byName = new Map<string, Agent>();

  it('rounds wait for the keys; the custodian generates and wraps them; late sites get wrapped copies', async () => {
    // Limits the default preset cannot quantise are refused at creation, saying what to change.
    await expectStatus(
      op.createFederation({ name: 'too-big', maxSites: 5000, maxSamplesPerSite: 1_000_000 }),
      status.INVALID_ARGUMENT,
      /cannot quantise this federation.*Bring maxSites x maxSamplesPerSite from 5000000000 down to at most \d+/,
    );
    await expectStatus(
      op.createFederation({ name: 'no-quorum', minSites: 20, maxSites: 10 }),
      status.INVALID_ARGUMENT,
      /minSites \(20\) is above maxSites \(10\)/,
    );
    const fed = await createFederation('he', 2, 10);
    fedId = fed.id;
    expect(fed.hePreset?.name).toBe('bgv-8192'); // the default preset encrypts
    for (const name of ['a', 'b', 'c']) byName.set(name, await newAgent(fedId, name));
    const [a, b, c] = ['a', 'b', 'c'].map((n) => byName.get(n)!);
    await op.scheduleRounds(fedId, 1);
    await coordinator.coord.engine.tick(); // a whole pass of the engine: no keys, so the round waits
    expect((await op.listRounds(fedId))[0]?.state).toBe(RoundState.ROUND_STATE_SCHEDULED);
    const declined = (await b!.keyring.keyFor(fedId, bgv).catch((e: unknown) => e)) as Error;
    expect(declined).toBeInstanceOf(TaskDeclinedError);
    expect(declined.message).toMatch(
      /does not hold the federation's HE key yet: .*not published yet.*site a/,
    );

    connect(a!); // the first site enrolled is the custodian by default
    await waitFor('the key bundle', async () =>
      (await op.getFederation(fedId)).heKeysPublished ? true : undefined,
    );
    round = await openRound(fedId);
    const keys = await Promise.all([a!, b!, c!].map((x) => x.keyring.keyFor(fedId, bgv)));
    expect(new Set(keys.map((k) => k.keyId)).size).toBe(1);
    expect(Buffer.from(keys[1]!.secretKey).equals(Buffer.from(keys[0]!.secretKey))).toBe(true);

    // A site enrolling while no key holder is connected is told why it cannot join yet...
    a!.disconnect();
    const d = await newAgent(fedId, 'd');
    const waiting = (await d.keyring.keyFor(fedId, bgv).catch((e: unknown) => e)) as Error;
    expect(waiting.message).toMatch(
      /No copy of the federation's HE key has been wrapped for this site yet.*site a/,
    );
    // ...and gets its copy when the custodian next connects.
    connect(a!);
    await waitFor('d to receive its wrapped key', () => d.keyring.keyFor(fedId, bgv).catch(() => undefined));

    // The operator may hand wrapping to another key-holding site, never to one without the key.
    await op.setKeyCustodian(fedId, 'b');
    a!.disconnect();
    connect(b!);
    const e = await newAgent(fedId, 'e');
    const eKey = await waitFor('e to receive a key wrapped by b', () =>
      e.keyring.keyFor(fedId, bgv).catch(() => undefined),
    );
    expect(eKey.keyId).toBe(keys[0]!.keyId);
    b!.disconnect();
    await newAgent(fedId, 'f');
    await expectStatus(op.setKeyCustodian(fedId, 'f'), status.FAILED_PRECONDITION, /f holds no copy/);
    await op.setKeyCustodian(fedId, 'a');
    connect(a!);
  });

  it('bad ciphertexts are refused before the running sum is touched, and the round goes on', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((n) => byName.get(n)!);
    const fed = await op.getFederation(fedId);
    const P = fed.parameterCount;
    const plan = planQuantisation(bgv, { maxSites: 10, ...LIMITS });
    const key = await a!.keyring.keyFor(fedId, bgv);
    const inputs = [
      { w: weights(1, P), n: 10 },
      { w: weights(2, P), n: 999 },
      { w: weights(3, P), n: 1 },
    ];
    const encrypt = async (i: number, k: HeKeyMaterial = key, preset: HePreset = bgv) =>
      (await cipher.encrypt(preset, k, inputs[i]!.w, inputs[i]!.n, plan)).bytes;
    const first = await encrypt(0);
    await upload(a!, round.id, first, 10);
    const before = (await roundQueries.getRound(coordinator.coord.database.db, round.id))!;
    const sumBefore = Buffer.from(await blobs.get(before.aggregateKey!));
    const untouched = async () => {
      const now = (await roundQueries.getRound(coordinator.coord.database.db, round.id))!;
      expect(now.aggregateKey).toBe(before.aggregateKey);
      expect(now.aggregateDigest).toBe(before.aggregateDigest);
      expect(now.totalSamples).toBe(10);
      expect(Buffer.from(await blobs.get(now.aggregateKey!)).equals(sumBefore)).toBe(true);
      const parts = await roundQueries.listParticipants(coordinator.coord.database.db, round.id);
      expect(parts.find((p) => p.siteId === b!.id.siteId)?.state).toBe('invited');
    };

    const good = await encrypt(1);
    const frame = updateFrameBytes(bgv);
    const edit = (f: (bytes: Uint8Array) => void) => {
      const bytes = good.slice();
      f(bytes);
      return bytes;
    };
    // Another preset: a CKKS update is another size, refused from its header.
    const ckksKey = await cipher.generateKeys(hePreset('ckks-8192'));
    const ckks = (await cipher.encrypt(hePreset('ckks-8192'), ckksKey, inputs[1]!.w, 999, plan)).bytes;
    await expectStatus(upload(b!, round.id, ckks, 999), status.INVALID_ARGUMENT, /updates are \d+ bytes/);
    await untouched();
    // Another preset, same size: the frames name it.
    const relabelled = edit((x) => {
      for (let at = 0; at < x.length; at += frame)
        x.set(createHash('sha256').update('other').digest(), at + 8);
    });
    await expectStatus(
      upload(b!, round.id, relabelled, 999),
      status.INVALID_ARGUMENT,
      /under HE preset .* uses bgv-8192/,
    );
    await untouched();
    // Truncated: declared short, or a stream that ends early.
    await expectStatus(
      upload(b!, round.id, good.subarray(0, good.length - 1000), 999),
      status.INVALID_ARGUMENT,
      /updates are \d+ bytes/,
    );
    await untouched();
    // Corrupted: a coefficient not reduced mod q, a SEAL header byte, the seed's PRNG type.
    for (const [what, at, value] of [
      ['coefficient', frame + FRAME_HEADER_BYTES + 113 + 7, 0xff],
      ['header', 2 * frame + FRAME_HEADER_BYTES + 30, 0x00],
      ['seed', 3 * frame - 65, 9],
    ] as const) {
      const bad = edit((x) => {
        x[at] = value === 0 && x[at] === 0 ? 1 : value;
      });
      await expectStatus(
        upload(b!, round.id, bad, 999),
        status.INVALID_ARGUMENT,
        /not a well-formed SEAL ciphertext/,
      );
      await untouched();
      expect(what).toBeTruthy();
    }
    // The wrong number of ciphertexts, at the right size: the frames' count.
    const recounted = edit((x) => {
      for (let at = 0; at < x.length; at += frame) new DataView(x.buffer, at + 76, 4).setUint32(0, 99, true);
    });
    await expectStatus(
      upload(b!, round.id, recounted, 999),
      status.INVALID_ARGUMENT,
      /has 99 ciphertexts but .* needs \d+/,
    );
    await untouched();
    // Another federation's key.
    const other = await createFederation('he-other', 1, 5);
    const g = await newAgent(other.id, 'g');
    connect(g);
    const otherKey = await waitFor('the other federation key', () =>
      g.keyring.keyFor(other.id, bgv).catch(() => undefined),
    );
    await expectStatus(
      upload(b!, round.id, await encrypt(1, otherKey), 999),
      status.FAILED_PRECONDITION,
      /not this federation's key/,
    );
    await untouched();
    // Another site's ciphertexts, replayed: their seeds are already in the sum.
    await expectStatus(
      upload(b!, round.id, first, 999),
      status.INVALID_ARGUMENT,
      /already in the round's sum/,
    );
    await untouched();
    // Plaintext into an encrypted federation.
    await expectStatus(
      upload(b!, round.id, new Uint8Array(P * 8), 999, 'plain-f64-weighted'),
      status.INVALID_ARGUMENT,
      /takes "he-bgv-8192" updates/,
    );
    await untouched();

    // The round goes on with the good updates and seals.
    await upload(b!, round.id, good, 999);
    await upload(c!, round.id, await encrypt(2), 1);
    await waitFor('round 1 to seal', async () =>
      (await op.getRound(round.id)).state === RoundState.ROUND_STATE_SEALED ? true : undefined,
    );
    const { max, bound } = await checkPrecision(a!, fedId, key, plan, inputs);
    expect(max).toBeGreaterThan(0);
    expect(bound).toBeLessThan(1e-5);
  });

  it('50 sites: the decrypted global model is float64 FedAvg within the stated bound', async () => {
    const fed = await createFederation('he-many', 50, 50);
    const sites: Agent[] = [];
    for (let i = 0; i < 50; i++) sites.push(await newAgent(fed.id, `s${String(i).padStart(2, '0')}`));
    await op.scheduleRounds(fed.id, 1);
    connect(sites[0]!);
    const r = await openRound(fed.id);
    const plan = planQuantisation(bgv, { maxSites: 50, ...LIMITS });
    const P = fed.parameterCount;
    const inputs: { w: Float32Array; n: number }[] = [];
    let key: HeKeyMaterial | undefined;
    for (const [i, s] of sites.entries()) {
      key = await s.keyring.keyFor(fed.id, bgv);
      const input = { w: weights(100 + i, P), n: 1 + ((i * 37) % 1000) };
      inputs.push(input);
      await upload(s, r.id, (await cipher.encrypt(bgv, key, input.w, input.n, plan)).bytes, input.n);
    }
    await waitFor('the 50-site round to seal', async () =>
      (await op.getRound(r.id)).state === RoundState.ROUND_STATE_SEALED ? true : undefined,
    );
    await checkPrecision(sites[0]!, fed.id, key!, plan, inputs);
  });
});
