import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IllegalTransitionError } from '../../errors.js';
import { type DatabaseHandle, openDatabase } from '../client.js';
import * as federationQ from './federations.js';
import * as roundQ from './rounds.js';
import * as siteQ from './sites.js';

/** Participation transitions against the real store (PGlite, migrated as in production). */
describe('participation transitions (PGlite)', () => {
  let handle: DatabaseHandle;
  const sites = ['st_a', 'st_b', 'st_c'];

  beforeAll(async () => {
    handle = await openDatabase({ dataDir: 'memory://' });
    await federationQ.insertFederation(handle.db, {
      id: 'fd_1',
      name: 'fed',
      spec: {},
      specHash: 'h',
      parameterCount: 4,
      minSites: 1,
      roundDeadlineSeconds: 60,
      maxSamplesPerSite: 100,
    });
    for (const id of sites) {
      await siteQ.insertSite(handle.db, {
        id,
        federationId: 'fd_1',
        name: id,
        state: 'enrolled',
        certFingerprint: `fp-${id}`,
        certPem: 'pem',
        signingPublicKey: 'k',
        keyWrapPublicKey: 'k',
      });
    }
  }, 120_000); // PGlite starts and migrates in-process: slow on a busy machine.

  afterAll(async () => {
    await handle?.close();
  });

  let rounds = 0;
  const openRound = async () => {
    rounds += 1;
    const [round] = await roundQ.insertRounds(handle.db, [
      { id: `rd_${rounds}`, federationId: 'fd_1', number: rounds, state: 'open' },
    ]);
    await roundQ.insertParticipants(handle.db, round!.id, sites);
    return round!.id;
  };
  const states = async (roundId: string) =>
    Object.fromEntries((await roundQ.listParticipants(handle.db, roundId)).map((p) => [p.siteId, p.state]));

  it('answers an invited participant once: a second answer of either kind does not move it', async () => {
    const roundId = await openRound();
    expect(await roundQ.answerParticipant(handle.db, roundId, 'st_a', 'submitted', { sampleCount: 7 })).toBe(
      true,
    );
    expect(await roundQ.answerParticipant(handle.db, roundId, 'st_a', 'submitted', { sampleCount: 9 })).toBe(
      false,
    );
    expect(await roundQ.answerParticipant(handle.db, roundId, 'st_a', 'declined', { reason: 'x' })).toBe(
      false,
    );
    expect(await roundQ.answerParticipant(handle.db, roundId, 'st_b', 'declined', { reason: 'busy' })).toBe(
      true,
    );
    expect(await roundQ.answerParticipant(handle.db, roundId, 'st_b', 'submitted', {})).toBe(false);
    const a = await roundQ.getParticipant(handle.db, roundId, 'st_a');
    expect(a).toMatchObject({ state: 'submitted', sampleCount: 7 });
    expect(await roundQ.getParticipant(handle.db, roundId, 'st_b')).toMatchObject({
      state: 'declined',
      reason: 'busy',
    });
  });

  it('marks only still-invited participants missed, and a missed one cannot answer late', async () => {
    const roundId = await openRound();
    await roundQ.answerParticipant(handle.db, roundId, 'st_a', 'submitted', {});
    await roundQ.answerParticipant(handle.db, roundId, 'st_b', 'declined', { reason: 'busy' });
    await roundQ.markMissed(handle.db, roundId);
    expect(await states(roundId)).toEqual({ st_a: 'submitted', st_b: 'declined', st_c: 'missed' });
    expect(await roundQ.answerParticipant(handle.db, roundId, 'st_c', 'submitted', {})).toBe(false);
    await roundQ.markMissed(handle.db, roundId); // closing twice changes nothing
    expect(await states(roundId)).toEqual({ st_a: 'submitted', st_b: 'declined', st_c: 'missed' });
  });

  it('touches only the named round', async () => {
    const first = await openRound();
    const second = await openRound();
    await roundQ.markMissed(handle.db, first);
    expect(Object.values(await states(first))).toEqual(['missed', 'missed', 'missed']);
    expect(Object.values(await states(second))).toEqual(['invited', 'invited', 'invited']);
  });

  it('refuses a move into invited, which no state leads to', async () => {
    const roundId = await openRound();
    await roundQ.markMissed(handle.db, roundId);
    await expect(
      roundQ.transitionParticipants(handle.db, roundId, 'st_a', 'invited', {}),
    ).rejects.toBeInstanceOf(IllegalTransitionError);
    expect((await roundQ.getParticipant(handle.db, roundId, 'st_a'))?.state).toBe('missed');
  });
});
