import { describe, expect, it } from 'vitest';
import {
  canParticipationTransition,
  canSiteTransition,
  canTransition,
  isTerminal,
  PARTICIPATION_STATES,
  participationSourcesOf,
  ROUND_STATES,
  SITE_STATES,
  siteSourcesOf,
  sourcesOf,
} from './states.js';

describe('round state machine', () => {
  it('allows exactly the documented moves', () => {
    const allowed = ROUND_STATES.flatMap((from) =>
      ROUND_STATES.filter((to) => canTransition(from, to)).map((to) => `${from}->${to}`),
    );
    expect(allowed.sort()).toEqual(
      [
        'scheduled->open',
        'scheduled->cancelled',
        'open->sealing',
        'open->failed',
        'open->cancelled',
        'sealing->sealed',
        'sealing->failed',
      ].sort(),
    );
  });

  it('has sealed, failed and cancelled as the only terminal states', () => {
    expect(ROUND_STATES.filter(isTerminal).sort()).toEqual(['cancelled', 'failed', 'sealed']);
    expect(sourcesOf('failed').sort()).toEqual(['open', 'sealing']);
  });
});

describe('participation state machine', () => {
  it('moves an invited site to submitted, declined or missed, and nothing else', () => {
    const allowed = PARTICIPATION_STATES.flatMap((from) =>
      PARTICIPATION_STATES.filter((to) => canParticipationTransition(from, to)).map((to) => `${from}->${to}`),
    );
    expect(allowed.sort()).toEqual(['invited->declined', 'invited->missed', 'invited->submitted']);
    expect(participationSourcesOf('missed')).toEqual(['invited']);
    expect(participationSourcesOf('invited')).toEqual([]);
  });
});

describe('site state machine', () => {
  it('revokes an enrolled site once; revoked is terminal', () => {
    const allowed = SITE_STATES.flatMap((from) =>
      SITE_STATES.filter((to) => canSiteTransition(from, to)).map((to) => `${from}->${to}`),
    );
    expect(allowed).toEqual(['enrolled->revoked']);
    expect(siteSourcesOf('revoked')).toEqual(['enrolled']);
    expect(siteSourcesOf('enrolled')).toEqual([]);
  });
});
