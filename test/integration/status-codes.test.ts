/**
 * Status codes for input and races the handlers never see coming, against a real coordinator
 * (in-process, real gRPC over TLS, PostgreSQL): undecodable protobuf bytes get INVALID_ARGUMENT, and
 * writes that lose a race on a unique index (two invites for one site name, two CreateFederation
 * calls with one name, two schedulers, a concurrent state change) get ALREADY_EXISTS or ABORTED with
 * a sentence, never INTERNAL. Races are made deterministic by holding the competing write open in
 * a second connection until the coordinator's write is seen waiting on its lock.
 */
import * as grpc from '@grpc/grpc-js';
import { type OperatorClient, tlsFromPkiDir } from '@radfed/coordinator';
import { modelSpecToProto, waitFor } from '@radfed/coordinator/testing';
import { channelCredentials, RpcError, SiteServiceClient, unaryCall } from '@radfed/proto';
import { builtinModelSpec, createCsr } from '@radfed/shared';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessCoordinator, startInProcessCoordinator } from '../support/coordinator.js';
import { createTempDatabase, type TempDatabase } from '../support/services.js';

describe('status codes for undecodable requests and lost races', () => {
  let db: TempDatabase;
  let coordinator: InProcessCoordinator;
  let address: string;
  let op: OperatorClient;
  let caPem: string;
  let tls: ReturnType<typeof tlsFromPkiDir>;

  beforeAll(async () => {
    db = await createTempDatabase();
    coordinator = await startInProcessCoordinator('status', { databaseUrl: db.url });
    ({ address, op, caPem } = coordinator);
    tls = tlsFromPkiDir(coordinator.config.pkiDir);
  });

  afterAll(async () => {
    await coordinator?.stop();
    await db?.drop();
  });

  const failure = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: unknown) => RpcError.from(e),
    );

  /** Runs `write` in an open transaction on another connection, releasing it once `call` waits on it. */
  const race = async <T>(write: (c: pg.Client) => Promise<unknown>, call: () => Promise<T>) => {
    const holder = new pg.Client({ connectionString: db.url });
    const watcher = new pg.Client({ connectionString: db.url });
    await Promise.all([holder.connect(), watcher.connect()]);
    try {
      await holder.query('begin');
      await write(holder);
      const pending = failure(call());
      await waitFor('the coordinator to wait on the held lock', async () => {
        const r = await watcher.query(
          "select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
        );
        return r.rows[0].n > 0 ? true : undefined;
      });
      await holder.query('commit');
      return await pending;
    } finally {
      await Promise.all([holder.end(), watcher.end()]);
    }
  };

  const federation = (name: string, minSites = 1) =>
    op.createFederation({
      name,
      modelSpec: modelSpecToProto(builtinModelSpec('dense-ae-32')),
      hePreset: 'plaintext',
      minSites,
      roundDeadlineSeconds: 3600,
    });

  it('undecodable protobuf bytes: INVALID_ARGUMENT naming the message', async () => {
    const client = new grpc.Client(address, channelCredentials(tls));
    const raw = (bytes: Buffer) =>
      new Promise<unknown>((resolve, reject) =>
        client.makeUnaryRequest(
          '/radfed.v1.OperatorService/ListRounds',
          (b: Buffer) => b,
          (b: Buffer) => b,
          bytes,
          (err, res) => (err ? reject(err) : resolve(res)),
        ),
      );
    // Field 1 declared as a 100-byte string, with 2 bytes present.
    const err = await failure(raw(Buffer.from([0x0a, 100, 0x61, 0x62])));
    expect(err?.codeName).toBe('INVALID_ARGUMENT');
    expect(err?.message).toMatch(/not a valid radfed\.v1\.OperatorService\.ListRounds message/);
    expect(err?.message).not.toMatch(/incident|\n\s+at /);
    client.close();
  });

  it('two pending invites for one site name: the second enrolment gets ALREADY_EXISTS', async () => {
    const fed = await federation('invites');
    const first = await op.inviteSite(fed.id, 'twin');
    const second = await op.inviteSite(fed.id, 'twin');
    const client = new SiteServiceClient(address, channelCredentials({ caCertPem: caPem }));
    const enrol = async (token: string) =>
      unaryCall(
        client,
        client.enrol,
        {
          token,
          csrPem: (await createCsr({ commonName: 'twin' })).csrPem,
          signingPublicKey: Buffer.alloc(32, 1),
          keyWrapPublicKey: Buffer.alloc(32, 2),
          agentVersion: 'test',
        },
        new grpc.Metadata(),
      );
    await enrol(first.token);
    const err = await failure(enrol(second.token));
    expect(err?.codeName).toBe('ALREADY_EXISTS');
    expect(err?.message).toMatch(/site named "twin" has already enrolled.*invite under a different name/);
    client.close();
  });

  it('two CreateFederation calls with one name: the loser gets ALREADY_EXISTS', async () => {
    const err = await race(
      (c) =>
        c.query(
          `insert into federations (id, name, spec, spec_hash, parameter_count, min_sites, round_deadline_seconds, max_samples_per_site)
           values ('fd_racer', 'contested', '{}', 'x', 1, 1, 60, 1)`,
        ),
      () => federation('contested'),
    );
    expect(err?.codeName).toBe('ALREADY_EXISTS');
    expect(err?.message).toMatch(/federation named "contested" already exists/);
  });

  it('two schedulers numbering the same round: the loser gets ABORTED', async () => {
    const fed = await federation('scheduling', 5);
    const err = await race(
      (c) =>
        c.query(
          `insert into rounds (id, federation_id, number, state) values ('rd_racer', $1, 1, 'scheduled')`,
          [fed.id],
        ),
      () => op.scheduleRounds(fed.id, 1),
    );
    expect(err?.codeName).toBe('ABORTED');
    expect(err?.message).toMatch(/scheduled rounds of this federation at the same moment/);
  });

  it('a state change made concurrently: ABORTED, not INTERNAL', async () => {
    // Five sites are needed, none enrolled: the round stays scheduled and the engine leaves it alone.
    const fed = await federation('changing', 5);
    const [round] = await op.scheduleRounds(fed.id, 1);
    const err = await race(
      (c) => c.query(`update rounds set state = 'cancelled' where id = $1`, [round!.id]),
      () => op.cancelRound(round!.id, 'operator'),
    );
    expect(err?.codeName).toBe('ABORTED');
    expect(err?.message).toMatch(/Round 1 changed state while this request ran/);
  });
});
