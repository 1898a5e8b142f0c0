import { ParticipationState, type Round, RoundState, type Site, SiteState } from '@radfed/proto';
import { describe, expect, it } from 'vitest';
import { roundJson, siteJson, toJson } from './format.js';

describe('--json output', () => {
  it('names round, participant and site states instead of enum numbers', () => {
    const round = {
      id: 'rd_1',
      number: 1,
      state: RoundState.ROUND_STATE_SEALED,
      participants: [{ siteId: 'st_1', state: ParticipationState.PARTICIPATION_STATE_SUBMITTED }],
    } as unknown as Round;
    expect(JSON.parse(toJson(roundJson(round)))).toMatchObject({
      state: 'sealed',
      participants: [{ siteId: 'st_1', state: 'submitted' }],
    });
    const site = { id: 'st_1', state: SiteState.SITE_STATE_REVOKED } as unknown as Site;
    expect(JSON.parse(toJson(siteJson(site)))).toMatchObject({ state: 'revoked' });
  });
});
