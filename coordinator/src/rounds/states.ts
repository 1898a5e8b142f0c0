/**
 * Round and participation states.
 *
 * A round is `scheduled` when the operator adds it, `open` once the previous round of its federation
 * has closed and its invitations went out, `sealing` while its running aggregate becomes the next
 * global model version, then `sealed`. An open round whose deadline passes below quorum, or whose
 * invited sites all answered without reaching quorum, is `failed` with a reason. The operator may
 * `cancel` a scheduled or open round. `sealed`, `failed` and `cancelled` are terminal.
 *
 * Each invited site's participation in an open round is `invited`, then `submitted` (update
 * accepted and folded into the running aggregate) or `declined` (the site said why it cannot take
 * part); a site still `invited` when the round closes is marked `missed`.
 */
export type RoundState = 'scheduled' | 'open' | 'sealing' | 'sealed' | 'failed' | 'cancelled';

export type ParticipationState = 'invited' | 'submitted' | 'declined' | 'missed';

/** A site is `enrolled` once it holds a certificate, `revoked` when the operator withdraws it. */
export type SiteState = 'enrolled' | 'revoked';

const ALLOWED: Record<RoundState, readonly RoundState[]> = {
  scheduled: ['open', 'cancelled'],
  open: ['sealing', 'failed', 'cancelled'],
  sealing: ['sealed', 'failed'],
  sealed: [],
  failed: [],
  cancelled: [],
};

export const ROUND_STATES = Object.keys(ALLOWED) as RoundState[];

/** Whether the round state machine allows `from` -> `to`. */
export function canTransition(from: RoundState, to: RoundState): boolean {
  return ALLOWED[from].includes(to);
}

/** States a round can be moved to `to` from. */
export function sourcesOf(to: RoundState): RoundState[] {
  return ROUND_STATES.filter((s) => ALLOWED[s].includes(to));
}

export function isTerminal(state: RoundState): boolean {
  return ALLOWED[state].length === 0;
}

export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${String(value)}`);
}
