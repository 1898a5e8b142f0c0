/**
 * Bad input against a real coordinator (in-process, real gRPC over TLS, PGlite, local blobs): each
 * case gets the matching gRPC status with an actionable sentence, nothing is stored, and the server
 * keeps serving.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Metadata, status } from '@grpc/grpc-js';
import { type Coordinator, OperatorClient, tlsFromPkiDir } from '@radfed/coordinator';
import {
  COORDINATOR_BIN,
  modelSpecToProto,
  roundQueries,
  runToEnd,
  waitFor,
} from '@radfed/coordinator/testing';
import {
  channelCredentials,
  channelOptions,
  RpcError,
  SiteServiceClient,
  type UploadUpdateRequest,
  unaryCall,
} from '@radfed/proto';
import { builtinModelSpec, createCsr, initDevPki, issueCertificate, signUpdate } from '@radfed/shared';
import { type AgentIdentity, enrol, SiteClient, updateSigner } from '@radfed/site-agent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessCoordinator, startInProcessCoordinator } from '../support/coordinator.js';
import { expectStatus } from '../support/status.js';

describe('bad input is refused with a clear status, nothing stored, server still serving', () => {
  let dir: string;
  let coord: Coordinator;
  let address: string;
  let op: OperatorClient;
  let fedId: string;
  let siteA: AgentIdentity;
  let siteB: AgentIdentity;
  let clientA: SiteClient;
  let caPem: string;
  let coordinator: InProcessCoordinator;

  /** The refusal `expectStatus` checks, and the server still serving afterwards. */
  const expectRefused = async (p: Promise<unknown>, code: status, text: RegExp) => {
    await expectStatus(p, code, text);
    expect((await op.listFederations()).length).toBeGreaterThan(0);
  };

  const enrolSite = async (name: string): Promise<AgentIdentity> => {
    const inv = await op.inviteSite(fedId, name);
    return enrol({
      coordinator: address,
      caCertPem: caPem,
      token: inv.token,
      stateDir: join(dir, 'agents', name),
    });
  };

  beforeAll(async () => {
    coordinator = await startInProcessCoordinator('bad', { maxMessageBytes: 1024 * 1024 });
    ({ dir, coord, address, op, caPem } = coordinator);
    // Plaintext and the small model on purpose: these cases are about the transport (a 1 MB update
    // sent in two chunks); encrypted-aggregation.test.ts covers HE input.
    const fed = await op.createFederation({
      name: 'bad-input',
      modelSpec: modelSpecToProto(builtinModelSpec('dense-ae-32')),
      hePreset: 'plaintext',
      minSites: 2,
      roundDeadlineSeconds: 600,
    });
    fedId = fed.id;
    siteA = await enrolSite('a');
    siteB = await enrolSite('b');
    clientA = new SiteClient(address, { caCertPem: caPem, certPem: siteA.certPem, keyPem: siteA.tlsKeyPem });
  });

  afterAll(async () => {
    clientA?.close();
    await coordinator?.stop();
  });

  it('reused, expired and unknown enrolment tokens: PERMISSION_DENIED', async () => {
    const inv = await op.inviteSite(fedId, 'c', 60);
    const csr = await createCsr({ commonName: 'c' });
    const client = new SiteServiceClient(address, channelCredentials({ caCertPem: caPem }), channelOptions());
    const req = (token: string) => ({
      token,
      csrPem: csr.csrPem,
      signingPublicKey: Buffer.alloc(32, 1),
      keyWrapPublicKey: Buffer.alloc(32, 2),
      agentVersion: 'test',
    });
    await unaryCall(client, client.enrol, req(inv.token), new Metadata());
    await expectRefused(
      unaryCall(client, client.enrol, req(inv.token), new Metadata()),
      status.PERMISSION_DENIED,
      /already used/,
    );
    await expectRefused(
      unaryCall(client, client.enrol, req('rfd_made_up'), new Metadata()),
      status.PERMISSION_DENIED,
      /not valid.*radfed sites invite/,
    );
    await expectRefused(
      unaryCall(client, client.enrol, req(''), new Metadata()),
      status.INVALID_ARGUMENT,
      /token/,
    );
    // Expiry: the shortest lifetime is 60 s, so age the token in the database rather than wait.
    const inv2 = await op.inviteSite(fedId, 'd', 60);
    await coord.database.db.execute(
      `update enrolment_tokens set expires_at = now() - interval '1 second' where site_name = 'd'` as never,
    );
    await expectRefused(
      unaryCall(client, client.enrol, req(inv2.token), new Metadata()),
      status.PERMISSION_DENIED,
      /expired/,
    );
    await expectRefused(
      unaryCall(
        client,
        client.enrol,
        { ...req((await op.inviteSite(fedId, 'e')).token), csrPem: 'garbage' },
        new Metadata(),
      ),
      status.INVALID_ARGUMENT,
      /certificate request is not valid/,
    );
    client.close();
  });

  it('unknown site and wrong roles: UNAUTHENTICATED / PERMISSION_DENIED', async () => {
    const pki = await initDevPki(join(dir, 'coord', 'pki'));
    const forged = await issueCertificate(pki.ca, { commonName: 'st_000000000000', role: 'site' });
    const stranger = new SiteClient(address, {
      caCertPem: caPem,
      certPem: forged.certPem,
      keyPem: forged.keyPem!,
    });
    await expectRefused(
      stranger.decline('rd_x', 'no'),
      status.UNAUTHENTICATED,
      /no enrolled site.*enrol again/,
    );
    stranger.close();

    const anonymous = new SiteClient(address, { caCertPem: caPem });
    await expectRefused(
      anonymous.decline('rd_x', 'no'),
      status.UNAUTHENTICATED,
      /needs a client certificate/,
    );
    anonymous.close();

    const siteAsOperator = new OperatorClient({
      address,
      tls: { caCertPem: caPem, certPem: siteA.certPem, keyPem: siteA.tlsKeyPem },
    });
    await expectRefused(
      siteAsOperator.listFederations(),
      status.PERMISSION_DENIED,
      /site certificate may not call this method.*operator/,
    );
    siteAsOperator.close();

    const opTls = tlsFromPkiDir(join(dir, 'coord', 'pki'));
    const operatorAsSite = new SiteClient(address, opTls);
    await expectRefused(
      operatorAsSite.decline('rd_x', 'no'),
      status.PERMISSION_DENIED,
      /operator certificate may not call/,
    );
    operatorAsSite.close();
  });

  it('uploads: not invited, out-of-order chunk, wrong digest, wrong size, closed round, oversized message', async () => {
    await op.scheduleRounds(fedId, 1);
    const rounds = await waitFor('round 1 to open', async () => {
      const rs = await op.listRounds(fedId);
      return rs[0]?.state === 2 ? rs : undefined;
    });
    const round = rounds[0]!;
    const fed = await op.getFederation(fedId);
    const bytes = fed.parameterCount * 8;
    const good = new Uint8Array(new Float64Array(fed.parameterCount).fill(0.5).buffer);
    const base = {
      roundId: round.id,
      modelVersion: 0,
      sampleCount: 4,
      metrics: { loss: 1 },
      encoding: 'plain-f64-weighted',
      datasetCommitment: 'ab'.repeat(32),
    };
    const by = (id: AgentIdentity) => ({ sign: updateSigner(id.signingKeyPem) });

    // A site enrolled after the round opened was not invited to it.
    const late = await enrolSite('late');
    const lateClient = new SiteClient(address, {
      caCertPem: caPem,
      certPem: late.certPem,
      keyPem: late.tlsKeyPem,
    });
    await expectRefused(
      lateClient.upload({ ...base, ...by(late), data: good }),
      status.PERMISSION_DENIED,
      /not invited to round 1/,
    );
    lateClient.close();

    const raw = new SiteServiceClient(
      address,
      channelCredentials({ caCertPem: caPem, certPem: siteA.certPem, keyPem: siteA.tlsKeyPem }),
      channelOptions(8 * 1024 * 1024),
    );
    const send = (parts: object[]) =>
      new Promise((resolve, reject) => {
        const call = raw.uploadUpdate((err, res) => (err ? reject(RpcError.from(err)) : resolve(res)));
        for (const p of parts) call.write(p as UploadUpdateRequest);
        call.end();
      });
    // Headers are signed by site A over whatever they end up declaring, so each case reaches its check.
    const header = (over: object = {}) => {
      const value = {
        roundId: round.id,
        modelVersion: 0n,
        totalBytes: BigInt(bytes),
        sha256: createHash('sha256').update(good).digest(),
        sampleCount: 4n,
        metrics: { loss: 1 },
        offset: 0n,
        encoding: 'plain-f64-weighted',
        ...over,
      };
      const facts = {
        roundId: value.roundId,
        modelVersion: Number(value.modelVersion),
        updateDigest: value.sha256.toString('hex'),
        datasetCommitment: 'ab'.repeat(32),
        metrics: value.metrics,
        sampleCount: Number(value.sampleCount),
      };
      const signed = {
        roundId: value.roundId,
        modelVersion: value.modelVersion,
        updateDigest: value.sha256,
        datasetCommitment: Buffer.from(facts.datasetCommitment, 'hex'),
        metrics: value.metrics,
        sampleCount: value.sampleCount,
        siteSignature: signUpdate(siteA.signingKeyPem, facts),
      };
      return { part: { $case: 'header', value: { ...value, signed } } };
    };
    const chunk = (offset: number, data: Uint8Array) => ({
      part: { $case: 'chunk', value: { offset: BigInt(offset), data: Buffer.from(data) } },
    });

    await expectRefused(
      send([chunk(0, good.subarray(0, 10))]),
      status.INVALID_ARGUMENT,
      /starts with its header/,
    );
    await expectRefused(
      send([header(), chunk(100, good.subarray(0, 10))]),
      status.INVALID_ARGUMENT,
      /out of order.*must start at 0/,
    );
    await expectRefused(
      send([
        header({ sha256: Buffer.alloc(32, 7) }),
        chunk(0, good.subarray(0, 500_000)),
        chunk(500_000, good.subarray(500_000)),
      ]),
      status.INVALID_ARGUMENT,
      /do not match the sha256/,
    );
    await expectRefused(
      send([header({ totalBytes: 12n })]),
      status.INVALID_ARGUMENT,
      /updates are \d+ bytes/,
    );
    await expectRefused(send([header({ sampleCount: 0n })]), status.INVALID_ARGUMENT, /sample count/);
    await expectRefused(
      send([header({ modelVersion: 3n })]),
      status.FAILED_PRECONDITION,
      /model version 3.*download 0/,
    );
    await expectRefused(
      send([header(), chunk(0, new Uint8Array(2 * 1024 * 1024))]),
      status.RESOURCE_EXHAUSTED,
      /larger than max|message/i,
    );
    const nan = new Float64Array(fed.parameterCount);
    nan[5] = Number.NaN;
    const nanBytes = new Uint8Array(nan.buffer);
    await expectRefused(
      clientA.upload({ ...base, ...by(siteA), data: nanBytes }),
      status.INVALID_ARGUMENT,
      /not a finite number/,
    );

    // Nothing from any of that was stored.
    const parts = await roundQueries.listParticipants(coord.database.db, round.id);
    expect(parts.find((p) => p.siteId === siteA.siteId)?.state).toBe('invited');
    expect((await roundQueries.getRound(coord.database.db, round.id))!.totalSamples).toBe(0);
    expect(await roundQueries.getUpload(coord.database.db, round.id, siteA.siteId)).toBeUndefined();

    // A good upload goes through; sending it again counts once.
    const first = await clientA.upload({ ...base, ...by(siteA), data: good });
    expect(first.duplicate).toBe(false);
    const again = await clientA.upload({ ...base, ...by(siteA), data: good });
    expect(again.duplicate).toBe(true);
    expect((await roundQueries.getRound(coord.database.db, round.id))!.totalSamples).toBe(4);

    // Closed round: cancel it, then upload from the other site.
    await op.cancelRound(round.id, 'test');
    const clientB = new SiteClient(address, {
      caCertPem: caPem,
      certPem: siteB.certPem,
      keyPem: siteB.tlsKeyPem,
    });
    await expectRefused(
      clientB.upload({ ...base, ...by(siteB), data: good }),
      status.FAILED_PRECONDITION,
      /round 1 is cancelled.*wait for the next task/i,
    );
    clientB.close();
    raw.close();
  });

  it('unknown federation and round: NOT_FOUND with what to run', async () => {
    await expectRefused(op.listRounds('no-such-fed'), status.NOT_FOUND, /radfed federations list/);
    await expectRefused(op.getRound('rd_nope'), status.NOT_FOUND, /radfed rounds list/);
    await expectRefused(op.createFederation({ name: 'bad name!' }), status.INVALID_ARGUMENT, /name/);
  });

  it('malformed config file: exit code 2 naming the problem', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ "port": 7443, ');
    const r1 = await runToEnd(COORDINATOR_BIN, ['--config', bad]);
    expect(r1.code).toBe(2);
    expect(r1.out).toMatch(/not valid JSON/);
    writeFileSync(bad, JSON.stringify({ port: 'seven', dataDir: join(dir, 'x') }));
    const r2 = await runToEnd(COORDINATOR_BIN, ['--config', bad]);
    expect(r2.code).toBe(2);
    expect(r2.out).toMatch(/port/);
    writeFileSync(bad, JSON.stringify({ prot: 1 }));
    const r3 = await runToEnd(COORDINATOR_BIN, ['--config', bad]);
    expect(r3.code).toBe(2);
    expect(r3.out).toMatch(/prot/);
  });
});
