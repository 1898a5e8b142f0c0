import { describe, expect, it } from 'vitest';
import { canTransition, isTerminal, ROUND_STATES, sourcesOf } from './states.js';

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
