/**
 * The JSON views the dashboard server (coordinator/src/dashboard) sends and this page reads: one
 * definition for both sides. States by name, times as ISO strings. Type-only: nothing here runs.
 */
export interface CustodyView {
  encrypted: boolean;
  custodianSiteId: string;
  custodianName: string;
  keysPublished: boolean;
  /** One sentence for a person. */
  summary: string;
}

export interface FederationView {
  id: string;
  name: string;
  hePreset: string;
  quorum: number;
  deadlineSeconds: number;
  modelVersion: number;
  parameterCount: number;
  createdAt: string | null;
  custody: CustodyView;
}

export interface SiteView {
  id: string;
  name: string;
  state: string;
  /** Unknown (null) offline. */
  connected: boolean | null;
  lastContact: string | null;
  roundsContributed: number;
}

export interface ParticipantView {
  siteId: string;
  siteName: string;
  state: string;
  samples: number;
  metrics: Record<string, number>;
  reason: string;
}

export interface RoundView {
  id: string;
  number: number;
  state: string;
  modelVersion: number;
  resultModelVersion: number | null;
  openedAt: string | null;
  closedAt: string | null;
  deadline: string | null;
  durationSeconds: number | null;
  participants: ParticipantView[];
  totalSamples: number;
  /** Sample-weighted mean of the submitted updates' `loss`, when any reported one. */
  meanLoss: number | null;
  failureReason: string;
}

export interface FederationDetail {
  federation: FederationView;
  sites: SiteView[];
  rounds: RoundView[];
}
