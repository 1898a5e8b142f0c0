/**
 * What the dashboard's browser side receives: plain JSON views of federations, sites and rounds,
 * states by name, times as ISO strings. Built from the coordinator's messages (live) or from an
 * audit export's ledger (offline). The shapes are defined once, in coordinator/dashboard-ui/src/view-types.ts.
 */
import { type Federation, ParticipationState, type Round, type Site } from '@radfed/proto';
import { participationName, roundStateName, siteStateName } from '../cli/format.js';

export type {
  CustodyView,
  FederationDetail,
  FederationView,
  ParticipantView,
  RoundView,
  SiteView,
} from '../../dashboard-ui/src/view-types.js';

import type {
  CustodyView,
  FederationView,
  ParticipantView,
  RoundView,
  SiteView,
} from '../../dashboard-ui/src/view-types.js';

const iso = (d: Date | undefined) => (d ? d.toISOString() : null);

export function custodyView(
  encrypted: boolean,
  custodianSiteId: string,
  keysPublished: boolean,
  names: ReadonlyMap<string, string>,
): CustodyView {
  const custodianName = custodianSiteId ? (names.get(custodianSiteId) ?? custodianSiteId) : '';
  let summary: string;
  if (!encrypted) summary = 'Plaintext federation: there are no HE keys to hold.';
  else if (!custodianSiteId)
    summary = 'No key custodian designated yet; name one with `radfed sites custodian`.';
  else if (!keysPublished)
    summary = `${custodianName} is the key custodian; it has not published the HE key bundle yet.`;
  else summary = `${custodianName} holds the HE keys and has published the key bundle.`;
  return { encrypted, custodianSiteId, custodianName, keysPublished, summary };
}

export function federationView(f: Federation, names: ReadonlyMap<string, string>): FederationView {
  const preset = f.hePreset?.name ?? '';
  return {
    id: f.id,
    name: f.name,
    hePreset: preset,
    quorum: f.minSites,
    deadlineSeconds: f.roundDeadlineSeconds,
    modelVersion: Number(f.currentModelVersion),
    parameterCount: f.parameterCount,
    createdAt: iso(f.createdAt),
    custody: custodyView(
      (f.hePreset?.scheme ?? 'plaintext') !== 'plaintext',
      f.keyCustodianSiteId,
      f.heKeysPublished,
      names,
    ),
  };
}

/** Sample-weighted mean loss of the participants that reported one. */
export function meanLoss(participants: readonly ParticipantView[]): number | null {
  const reported = participants.filter((p) => p.metrics.loss !== undefined && p.samples > 0);
  const n = reported.reduce((a, p) => a + p.samples, 0);
  return n > 0 ? reported.reduce((a, p) => a + p.metrics.loss! * p.samples, 0) / n : null;
}

export function durationSeconds(openedAt: string | null, closedAt: string | null): number | null {
  if (!openedAt || !closedAt) return null;
  return (Date.parse(closedAt) - Date.parse(openedAt)) / 1000;
}

export function roundView(r: Round, names: ReadonlyMap<string, string>): RoundView {
  const participants = r.participants.map((p) => ({
    siteId: p.siteId,
    siteName: names.get(p.siteId) ?? p.siteId,
    state: participationName(p.state),
    samples: Number(p.sampleCount),
    metrics: { ...p.metrics },
    reason: p.reason,
  }));
  const openedAt = iso(r.openedAt);
  const closedAt = iso(r.closedAt);
  const sealed = roundStateName(r.state) === 'sealed';
  return {
    id: r.id,
    number: r.number,
    state: roundStateName(r.state),
    modelVersion: Number(r.modelVersion),
    resultModelVersion: sealed ? Number(r.resultModelVersion) : null,
    openedAt,
    closedAt,
    deadline: iso(r.deadline),
    durationSeconds: durationSeconds(openedAt, closedAt),
    participants,
    totalSamples: Number(r.totalSamples),
    meanLoss: meanLoss(participants),
    failureReason: r.failureReason,
  };
}

/** Sites with the number of sealed rounds each contributed an update to. */
export function siteViews(sites: readonly Site[], rounds: readonly Round[]): SiteView[] {
  const contributed = new Map<string, number>();
  for (const r of rounds) {
    if (roundStateName(r.state) !== 'sealed') continue;
    for (const p of r.participants) {
      if (p.state === ParticipationState.PARTICIPATION_STATE_SUBMITTED)
        contributed.set(p.siteId, (contributed.get(p.siteId) ?? 0) + 1);
    }
  }
  return sites.map((s) => ({
    id: s.id,
    name: s.name,
    state: siteStateName(s.state),
    connected: s.connected,
    lastContact: iso(s.lastSeenAt),
    roundsContributed: contributed.get(s.id) ?? 0,
  }));
}
