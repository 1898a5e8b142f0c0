/**
 * A round survives a coordinator crash: the coordinator is killed with SIGKILL after one site's
 * update was accepted; on restart (same data directory, embedded PGlite) the accepted update is
 * still counted, the agents reconnect with backoff, the other site's update arrives, and the round
 * seals with both.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OperatorClient } from '@radfed/coordinator';
import {
  enrolAndRunAgent,
  modelSpecToProto,
  ProcessGroup,
  prepareSiteData,
  waitFor,
} from '@radfed/coordinator/testing';
import { ParticipationState, RoundState } from '@radfed/proto';
import { builtinModelSpec } from '@radfed/shared';
import { afterAll, describe, expect, it } from 'vitest';
import { startCoordinatorProcess } from '../support/coordinator.js';

describe('coordinator crash mid-round', () => {
  const dir = mkdtempSync(join(tmpdir(), 'radfed-crash-'));
  const group = new ProcessGroup();
  let op: OperatorClient | undefined;

  afterAll(async () => {
    op?.close();
    await group.stopAll(5000);
    rmSync(dir, { recursive: true, force: true });
  });

  it('loses no accepted update and seals after restart', async () => {
    let coordinator = await startCoordinatorProcess(group, { dir });
    op = coordinator.op;
    const fed = await op.createFederation({
      name: 'crash',
      minSites: 2,
      roundDeadlineSeconds: 300,
      hePreset: 'plaintext',
      modelSpec: modelSpecToProto(builtinModelSpec('dense-ae-32', { localEpochs: 40 })),
    });
    // hospital-a has 10 images, hospital-c 39: a finishes well before c.
    const sites = prepareSiteData(join(dir, 'data')).filter((s) => s.name !== 'hospital-b');
    for (const site of sites) {
      const inv = await op.inviteSite(fed.id, site.name);
      await enrolAndRunAgent(group, site, {
        address: coordinator.address,
        caPath: coordinator.caPath,
        token: inv.token,
        stateDir: join(dir, 'agents', site.name),
        logDir: join(dir, 'logs'),
      });
    }
    const names = new Map((await op.listSites(fed.id)).map((s) => [s.name, s.id]));
    const [round] = await op.scheduleRounds(fed.id, 1);

    const submitted = (r: { participants: { siteId: string; state: ParticipationState }[] }, name: string) =>
      r.participants.find((p) => p.siteId === names.get(name))?.state ===
      ParticipationState.PARTICIPATION_STATE_SUBMITTED;
    const first = await waitFor(
      'hospital-a update accepted',
      async () => {
        const r = await op!.getRound(round!.id);
        return submitted(r, 'hospital-a') ? r : undefined;
      },
      120_000,
      100,
    );
    expect(submitted(first, 'hospital-c')).toBe(false);

    const died = new Promise((resolve) => coordinator.child.once('exit', resolve));
    coordinator.child.kill('SIGKILL');
    await died;
    op.close();
    coordinator = await startCoordinatorProcess(group, { dir, port: coordinator.port });
    op = coordinator.op;

    const sealed = await waitFor(
      'the round to seal after the restart',
      async () => {
        const r = await op!.getRound(round!.id);
        return r.state === RoundState.ROUND_STATE_SEALED ? r : undefined;
      },
      180_000,
      500,
    );
    expect(submitted(sealed, 'hospital-a')).toBe(true);
    expect(submitted(sealed, 'hospital-c')).toBe(true);
    expect(Number(sealed.totalSamples)).toBe(
      10 + Number(sealed.participants.find((p) => p.siteId === names.get('hospital-c'))!.sampleCount),
    );
    expect(readFileSync(join(dir, 'logs/hospital-c.log'), 'utf8')).toMatch(/reconnecting in|interrupted/);
  });
});
