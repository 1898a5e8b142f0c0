/**
 * Resumable uploads against a real coordinator (in-process, real gRPC over TLS, PostgreSQL, local
 * blobs): a stream broken mid-upload and a stream that stalls both keep their staged bytes;
 * GetUploadStatus says how many; a header with that offset resumes, and a torn tail past the
 * recorded offset is cut off on resume. The client's cancel is logged as a cancelled call, not as an
 * internal error.
 */
import { createHash } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { Metadata, status } from '@grpc/grpc-js';
import { modelSpecToProto, roundQueries, waitFor } from '@radfed/coordinator/testing';
import {
  channelCredentials,
  channelOptions,
  RpcError,
  SiteServiceClient,
  type UploadUpdateRequest,
  type UploadUpdateResponse,
  unaryCall,
} from '@radfed/proto';
import { builtinModelSpec, createLogger, signUpdate } from '@radfed/shared';
import { type AgentIdentity, enrol } from '@radfed/site-agent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessCoordinator, startInProcessCoordinator } from '../support/coordinator.js';
import { createTempDatabase, type TempDatabase } from '../support/services.js';

const CHUNK = 64 * 1024;

interface Scenario extends InProcessCoordinator {
  db: TempDatabase;
  site: AgentIdentity;
  roundId: string;
  update: Uint8Array;
  logs: Record<string, unknown>[];
}

/** A coordinator on its own PostgreSQL database with one enrolled site and round 1 open. */
async function scenario(name: string, uploadInactivitySeconds: number): Promise<Scenario> {
  const db = await createTempDatabase();
  const logs: Record<string, unknown>[] = [];
  const coordinator = await startInProcessCoordinator(
    name,
    { databaseUrl: db.url, uploadInactivitySeconds },
    createLogger({ write: (l) => logs.push(JSON.parse(l)) }),
  );
  const { dir, address, caPem, op } = coordinator;
  const fed = await op.createFederation({
    name,
    modelSpec: modelSpecToProto(builtinModelSpec('dense-ae-32')),
    hePreset: 'plaintext',
    minSites: 1,
    roundDeadlineSeconds: 3600,
  });
  const inv = await op.inviteSite(fed.id, 'site');
  const site = await enrol({
    coordinator: address,
    caCertPem: caPem,
    token: inv.token,
    stateDir: join(dir, 'agent'),
  });
  await op.scheduleRounds(fed.id, 1);
  const round = await waitFor('round 1 to open', async () => {
    const rs = await op.listRounds(fed.id);
    return rs[0]?.state === 2 ? rs[0] : undefined;
  });
  const update = new Uint8Array(new Float64Array(fed.parameterCount).fill(0.25).buffer);
  return { ...coordinator, db, site, roundId: round.id, update, logs };
}

async function tearDown(s: Scenario | undefined): Promise<void> {
  if (!s) return;
  await s.stop();
  await s.db.drop();
}

describe('resumable uploads over a real stream', () => {
  // Long enough never to fire while the test polls; the stall test gets its own coordinator.
  let broken: Scenario;
  let stalled: Scenario;

  beforeAll(async () => {
    [broken, stalled] = await Promise.all([scenario('broken', 600), scenario('stalled', 1.5)]);
  });

  afterAll(async () => {
    await Promise.all([tearDown(broken), tearDown(stalled)]);
  });

  const clientFor = (s: Scenario) =>
    new SiteServiceClient(
      s.address,
      channelCredentials({ caCertPem: s.caPem, certPem: s.site.certPem, keyPem: s.site.tlsKeyPem }),
      channelOptions(),
    );

  const header = (s: Scenario, offset: number): UploadUpdateRequest => {
    const sha256 = createHash('sha256').update(s.update).digest();
    const facts = {
      roundId: s.roundId,
      modelVersion: 0,
      updateDigest: sha256.toString('hex'),
      datasetCommitment: 'cd'.repeat(32),
      metrics: { loss: 0.5 },
      sampleCount: 4,
    };
    return {
      part: {
        $case: 'header',
        value: {
          roundId: s.roundId,
          modelVersion: 0n,
          totalBytes: BigInt(s.update.byteLength),
          sha256,
          sampleCount: 4n,
          metrics: facts.metrics,
          offset: BigInt(offset),
          encoding: 'plain-f64-weighted',
          signed: {
            roundId: s.roundId,
            modelVersion: 0n,
            updateDigest: sha256,
            datasetCommitment: Buffer.from(facts.datasetCommitment, 'hex'),
            metrics: facts.metrics,
            sampleCount: 4n,
            siteSignature: signUpdate(s.site.signingKeyPem, facts),
          },
        },
      },
    };
  };

  const chunks = (s: Scenario, from: number, to: number): UploadUpdateRequest[] => {
    const out: UploadUpdateRequest[] = [];
    for (let at = from; at < to; at += CHUNK) {
      const data = Buffer.from(s.update.subarray(at, Math.min(at + CHUNK, to)));
      out.push({ part: { $case: 'chunk', value: { offset: BigInt(at), data } } });
    }
    return out;
  };

  /** Opens an upload, writes `parts`, and ends the stream only when `end` is set. */
  const open = (client: SiteServiceClient, parts: UploadUpdateRequest[], end: boolean) => {
    let call: ReturnType<SiteServiceClient['uploadUpdate']> | undefined;
    const done = new Promise<UploadUpdateResponse>((resolve, reject) => {
      call = client.uploadUpdate((err, res) => (err ? reject(RpcError.from(err)) : resolve(res!)));
    });
    for (const p of parts) call!.write(p);
    if (end) call!.end();
    return { call: call!, done };
  };

  const uploadStatus = (s: Scenario, client: SiteServiceClient) =>
    unaryCall(client, client.getUploadStatus, { roundId: s.roundId }, new Metadata());

  const failure = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: unknown) => RpcError.from(e),
    );

  const digestOf = (s: Scenario) => createHash('sha256').update(s.update).digest();

  it('a stream broken mid-upload resumes from GetUploadStatus, with a torn tail cut off', async () => {
    const s = broken;
    const client = clientFor(s);
    const cut = 4 * CHUNK;
    const first = open(client, [header(s, 0), ...chunks(s, 0, cut)], false);
    // Break the stream once the coordinator has staged what was sent.
    await waitFor('the first 256 KiB to be staged', async () =>
      Number((await uploadStatus(s, client)).receivedBytes) === cut ? true : undefined,
    );
    first.call.cancel();
    expect((await failure(first.done))?.codeName).toBe('CANCELLED');
    await waitFor('the cancel to be logged', async () =>
      s.logs.some((l) => l.msg === 'call cancelled by the client' && l.method === 'UploadUpdate')
        ? true
        : undefined,
    );
    expect(s.logs.filter((l) => l.level === 'error')).toEqual([]);

    const st = await uploadStatus(s, client);
    expect(Number(st.receivedBytes)).toBe(cut);
    expect(st.sha256.equals(digestOf(s))).toBe(true);
    expect(st.accepted).toBe(false);

    // A crash between appending and recording leaves bytes past the recorded offset.
    appendFileSync(
      join(s.coord.config.blobDir, 'staging', s.roundId, s.site.siteId),
      Buffer.alloc(1000, 0xee),
    );

    const resumed = open(client, [header(s, cut), ...chunks(s, cut, s.update.byteLength)], true);
    expect((await resumed.done).receipt?.duplicate).toBe(false);
    const participant = (await roundQueries.listParticipants(s.coord.database.db, s.roundId)).find(
      (p) => p.siteId === s.site.siteId,
    );
    expect(participant?.state).toBe('submitted');
    expect(participant?.updateDigest).toBe(digestOf(s).toString('hex'));
    expect((await uploadStatus(s, client)).accepted).toBe(true);
    client.close();
  });

  it('a stalled upload gets DEADLINE_EXCEEDED and its staged bytes resume', async () => {
    const s = stalled;
    const client = clientFor(s);
    const first = open(client, [header(s, 0), ...chunks(s, 0, CHUNK)], false);
    const err = await failure(first.done);
    expect(err?.codeName).toBe(status[status.DEADLINE_EXCEEDED]);
    expect(err?.message).toMatch(/sent nothing for 1\.5 s.*65536 bytes are kept.*GetUploadStatus/);
    first.call.end();

    expect(Number((await uploadStatus(s, client)).receivedBytes)).toBe(CHUNK);
    const resumed = open(client, [header(s, CHUNK), ...chunks(s, CHUNK, s.update.byteLength)], true);
    expect((await resumed.done).receipt?.duplicate).toBe(false);
    expect(s.logs.filter((l) => l.level === 'error')).toEqual([]);
    client.close();
  });
});
