/** Plain-text tables and small formatters for the CLIs. */
import {
  ParticipationState,
  type Round,
  type RoundParticipant,
  RoundState,
  type Site,
  SiteState,
} from '@radfed/proto';

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(cells[0]!), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n');
}

const strip = (name: string, prefix: string) => name.replace(prefix, '').toLowerCase();

export function roundStateName(s: RoundState): string {
  return strip(RoundState[s] ?? 'UNKNOWN', 'ROUND_STATE_');
}

export function siteStateName(s: SiteState): string {
  return strip(SiteState[s] ?? 'UNKNOWN', 'SITE_STATE_');
}

export function participationName(s: ParticipationState): string {
  return strip(ParticipationState[s] ?? 'UNKNOWN', 'PARTICIPATION_STATE_');
}

export function ago(date: Date | undefined, now = new Date()): string {
  if (!date) return 'never';
  const s = Math.max(0, Math.round((now.getTime() - date.getTime()) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

export function seconds(from: Date | undefined, to: Date | undefined): string {
  if (!from || !to) return '-';
  return `${((to.getTime() - from.getTime()) / 1000).toFixed(1)}s`;
}

/** A round for `--json` output: its own and its participants' states by name (`sealed`, `submitted`). */
export function roundJson(round: Round): Omit<Round, 'state' | 'participants'> & {
  state: string;
  participants: (Omit<RoundParticipant, 'state'> & { state: string })[];
} {
  return {
    ...round,
    state: roundStateName(round.state),
    participants: round.participants.map((p) => ({ ...p, state: participationName(p.state) })),
  };
}

/** A site for `--json` output: its state by name (`enrolled`, `revoked`). */
export function siteJson(site: Site): Omit<Site, 'state'> & { state: string } {
  return { ...site, state: siteStateName(site.state) };
}

/** JSON that serialises bigint and Buffer fields of generated messages readably. */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (typeof v === 'bigint') return Number(v);
      if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') {
        return Buffer.from((v as { data: number[] }).data).toString('hex');
      }
      return v;
    },
    2,
  );
}

/** One round as a table of its sites (state, samples, loss), with a summary line. */
export function renderRound(round: Round, siteNames: Map<string, string> = new Map()): string {
  const rows = round.participants.map((p) => [
    siteNames.get(p.siteId) ?? p.siteId,
    participationName(p.state),
    Number(p.sampleCount) || '-',
    p.metrics.loss !== undefined ? p.metrics.loss.toFixed(4) : '-',
    p.reason || '',
  ]);
  const losses = round.participants.filter((p) => p.metrics.loss !== undefined && Number(p.sampleCount) > 0);
  const n = losses.reduce((a, p) => a + Number(p.sampleCount), 0);
  const mean =
    n > 0 ? losses.reduce((a, p) => a + p.metrics.loss! * Number(p.sampleCount), 0) / n : undefined;
  const state = roundStateName(round.state);
  const head =
    `Round ${round.number}: ${state}` +
    (round.state === RoundState.ROUND_STATE_SEALED ? ` -> model v${round.resultModelVersion}` : '') +
    `, ${round.participants.filter((p) => p.state === ParticipationState.PARTICIPATION_STATE_SUBMITTED).length}/${round.participants.length} sites` +
    `, ${round.totalSamples} samples` +
    (mean !== undefined ? `, mean loss ${mean.toFixed(4)}` : '') +
    `, ${seconds(round.openedAt, round.closedAt)}` +
    (round.failureReason ? ` (${round.failureReason})` : '');
  return `${head}\n${table(['site', 'state', 'samples', 'loss', 'note'], rows)}`;
}
