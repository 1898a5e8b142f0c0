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
 * part); a site still `invited` when the round closes is marked `missed`. Those three are terminal.
 *
 * A site is `enrolled` once it holds a certificate, `revoked` when the operator withdraws it, which
 * is terminal (a revoked site enrols again under a new id). A site enters `enrolled` by enrolment,
 * an insert, never by a transition.
 */
export type RoundState = 'scheduled' | 'open' | 'sealing' | 'sealed' | 'failed' | 'cancelled';

export type ParticipationState = 'invited' | 'submitted' | 'declined' | 'missed';

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

const PARTICIPATION_ALLOWED: Record<ParticipationState, readonly ParticipationState[]> = {
  invited: ['submitted', 'declined', 'missed'],
  submitted: [],
  declined: [],
  missed: [],
};

export const PARTICIPATION_STATES = Object.keys(PARTICIPATION_ALLOWED) as ParticipationState[];

/** Whether a participation may move `from` -> `to`. */
export function canParticipationTransition(from: ParticipationState, to: ParticipationState): boolean {
  return PARTICIPATION_ALLOWED[from].includes(to);
}

/** States a participation can be moved to `to` from. */
export function participationSourcesOf(to: ParticipationState): ParticipationState[] {
  return PARTICIPATION_STATES.filter((s) => PARTICIPATION_ALLOWED[s].includes(to));
}

const SITE_ALLOWED: Record<SiteState, readonly SiteState[]> = {
  enrolled: ['revoked'],
  revoked: [],
};

export const SITE_STATES = Object.keys(SITE_ALLOWED) as SiteState[];

/** Whether a site may move `from` -> `to`. */
export function canSiteTransition(from: SiteState, to: SiteState): boolean {
  return SITE_ALLOWED[from].includes(to);
}

/** States a site can be moved to `to` from. */
export function siteSourcesOf(to: SiteState): SiteState[] {
  return SITE_STATES.filter((s) => SITE_ALLOWED[s].includes(to));
}

export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${String(value)}`);
}
