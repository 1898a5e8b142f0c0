/**
 * End to end on the real services: a coordinator process on PostgreSQL and NATS JetStream, three
 * agent processes enrolled over mutual TLS, two rounds. One agent is killed (SIGKILL) mid-round;
 * the round still seals at quorum once its deadline passes, and so does the next.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OperatorClient } from '@radfed/coordinator';
import {
  type BusEvent,
  enrolAndRunAgent,
  NatsEventBus,
  ProcessGroup,
  prepareSiteData,
  waitFor,
} from '@radfed/coordinator/testing';
import { ParticipationState, RoundState } from '@radfed/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinatorProcess } from '../support/coordinator.js';
import { createTempDatabase, NATS_URL, type TempDatabase } from '../support/services.js';

const DEADLINE_S = 40;

describe('federation on PostgreSQL + NATS with a site killed mid-round', () => {
  let dir: string;
  let db: TempDatabase;
  let bus: NatsEventBus;
  const events: BusEvent[] = [];
  const group = new ProcessGroup();
  let op: OperatorClient;
  const stream = `RADFED_E2E_${Date.now()}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'radfed-e2e-'));
    db = await createTempDatabase('radfed_e2e');
    bus = await NatsEventBus.connect({ url: NATS_URL, stream, subjectPrefix: stream.toLowerCase() });
    await bus.subscribe((e) => {
      events.push(e);
    });
  });

  afterAll(async () => {
    op?.close();
    await group.stopAll(5000);
    await bus?.deleteStream().catch(() => undefined);
    await bus?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('seals both rounds at quorum after the deadline, events on NATS, clean SIGTERM', async () => {
    // The bus in this test shares the stream; the coordinator publishes under the default prefix.
    const coordinator = await startCoordinatorProcess(group, {
      dir,
      args: ['--nats-stream', stream],
      env: { DATABASE_URL: db.url, NATS_URL },
    });
    op = coordinator.op;
    const log = readFileSync(join(dir, 'logs/coordinator.log'), 'utf8');
    expect(log).toMatch(/database ready \(postgres\)/);
    expect(log).toMatch(/event bus ready \(NATS JetStream\)/);

    // A few local epochs: the kill lands as soon as the victim starts training, and the deadline
    // leaves the other sites ample time even on a loaded 2-core machine.
    const { builtinModelSpec } = await import('@radfed/shared');
    const { modelSpecToProto } = await import('@radfed/coordinator/testing');
    const fed = await op.createFederation({
      name: 'e2e',
      minSites: 2,
      roundDeadlineSeconds: DEADLINE_S,
      modelSpec: modelSpecToProto(builtinModelSpec('dense-ae-32', { localEpochs: 10 })),
    });
    const sites = prepareSiteData(join(dir, 'data'));
    // Enrol in parallel, then run every agent.
    await Promise.all(
      sites.map(async (site) => {
        const inv = await op.inviteSite(fed.id, site.name);
        await enrolAndRunAgent(group, site, {
          address: coordinator.address,
          caPath: coordinator.caPath,
          token: inv.token,
          stateDir: join(dir, 'agents', site.name),
          logDir: join(dir, 'logs'),
        });
      }),
    );
    const names = new Map((await op.listSites(fed.id)).map((s) => [s.id, s.name]));
    await op.scheduleRounds(fed.id, 2);

    // Kill hospital-b as soon as it starts training round 1.
    const victim = 'hospital-b';
    await waitFor(
      `${victim} to start training`,
      async () =>
        /round 1: training/.test(readFileSync(join(dir, 'logs', `${victim}.log`), 'utf8')) ? true : undefined,
      60_000,
      50,
    );
    group.children.get(victim)!.kill('SIGKILL');

    const rounds = await waitFor(
      'both rounds to close',
      async () => {
        const rs = await op.listRounds(fed.id);
        return rs.length === 2 && rs.every((r) => r.state >= RoundState.ROUND_STATE_SEALED) ? rs : undefined;
      },
      4 * DEADLINE_S * 1000,
      500,
    );
    for (const r of rounds) {
      expect(r.state, `round ${r.number}: ${r.failureReason}`).toBe(RoundState.ROUND_STATE_SEALED);
      const byName = new Map(r.participants.map((p) => [names.get(p.siteId), p]));
      expect(byName.get(victim)?.state).toBe(ParticipationState.PARTICIPATION_STATE_MISSED);
      expect(byName.get('hospital-a')?.state).toBe(ParticipationState.PARTICIPATION_STATE_SUBMITTED);
      expect(byName.get('hospital-c')?.state).toBe(ParticipationState.PARTICIPATION_STATE_SUBMITTED);
      // Sealed only once the silent site's deadline passed, not before.
      expect(r.closedAt!.getTime()).toBeGreaterThanOrEqual(r.deadline!.getTime());
    }
    expect(rounds.map((r) => Number(r.resultModelVersion))).toEqual([1, 2]);
    expect(Number(rounds[1]!.modelVersion)).toBe(1);

    // Every state change reached NATS JetStream through the outbox.
    await waitFor('sealed events on NATS', async () =>
      events.filter((e) => e.topic === 'round.sealed').length === 2 ? true : undefined,
    );
    const topics = events.map((e) => e.topic);
    expect(topics).toContain('round.opened');
    expect(topics.filter((t) => t === 'round.update_accepted').length).toBe(4);

    // SIGTERM drains and exits cleanly.
    const exited = new Promise<number | null>((resolve) =>
      coordinator.child.once('exit', (code) => resolve(code)),
    );
    coordinator.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(readFileSync(join(dir, 'logs/coordinator.log'), 'utf8')).toMatch(/coordinator stopped/);
  });
});
