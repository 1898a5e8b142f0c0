import { ParticipationState, type Round, RoundState, type Site, SiteState } from '@radfed/proto';
import { describe, expect, it } from 'vitest';
import { custodyView, meanLoss, siteViews } from './views.js';

describe('dashboard views', () => {
  it('says where the HE keys stand', () => {
    const names = new Map([['st_1', 'alpha']]);
    expect(custodyView(false, '', false, names).summary).toMatch(/Plaintext federation/);
    expect(custodyView(true, '', false, names).summary).toMatch(
      /No key custodian designated.*radfed sites custodian/,
    );
    expect(custodyView(true, 'st_1', false, names).summary).toBe(
      'alpha is the key custodian; it has not published the HE key bundle yet.',
    );
    expect(custodyView(true, 'st_1', true, names).summary).toBe(
      'alpha holds the HE keys and has published the key bundle.',
    );
  });

  it('weights the mean loss by samples, over the sites that reported one', () => {
    const p = (samples: number, loss?: number) => ({
      siteId: 's',
      siteName: 's',
      state: 'submitted',
      samples,
      metrics: (loss === undefined ? {} : { loss }) as Record<string, number>,
      reason: '',
    });
    expect(meanLoss([p(10, 0.5), p(30, 0.4), p(5)])).toBeCloseTo((0.5 * 10 + 0.4 * 30) / 40);
    expect(meanLoss([p(5)])).toBeNull();
  });

  it('counts the sealed rounds each site contributed to', () => {
    const site = (id: string) =>
      ({ id, name: id, state: SiteState.SITE_STATE_ENROLLED, connected: true }) as Site;
    const round = (state: RoundState, submitted: string[]) =>
      ({
        state,
        participants: ['a', 'b'].map((siteId) => ({
          siteId,
          state: submitted.includes(siteId)
            ? ParticipationState.PARTICIPATION_STATE_SUBMITTED
            : ParticipationState.PARTICIPATION_STATE_MISSED,
        })),
      }) as Round;
    const views = siteViews(
      [site('a'), site('b')],
      [
        round(RoundState.ROUND_STATE_SEALED, ['a', 'b']),
        round(RoundState.ROUND_STATE_SEALED, ['a']),
        round(RoundState.ROUND_STATE_FAILED, ['b']),
      ],
    );
    expect(views.map((v) => [v.id, v.roundsContributed, v.state, v.lastContact])).toEqual([
      ['a', 2, 'enrolled', null],
      ['b', 1, 'enrolled', null],
    ]);
  });
});
