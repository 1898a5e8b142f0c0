/** The JSON the dashboard server sends; mirrors coordinator/src/dashboard/views.ts and audit.ts. */
export interface Info {
  mode: 'live' | 'audit';
  title: string;
}

export interface Custody {
  encrypted: boolean;
  custodianSiteId: string;
  custodianName: string;
  keysPublished: boolean;
  summary: string;
}

export interface Federation {
  id: string;
  name: string;
  hePreset: string;
  quorum: number;
  deadlineSeconds: number;
  modelVersion: number;
  parameterCount: number;
  createdAt: string | null;
  custody: Custody;
}

export interface Site {
  id: string;
  name: string;
  state: string;
  connected: boolean | null;
  lastContact: string | null;
  roundsContributed: number;
}

export interface Participant {
  siteId: string;
  siteName: string;
  state: string;
  samples: number;
  metrics: Record<string, number>;
  reason: string;
}

export interface Round {
  id: string;
  number: number;
  state: string;
  modelVersion: number;
  resultModelVersion: number | null;
  openedAt: string | null;
  closedAt: string | null;
  deadline: string | null;
  durationSeconds: number | null;
  participants: Participant[];
  totalSamples: number;
  meanLoss: number | null;
  failureReason: string;
}

export interface Detail {
  federation: Federation;
  sites: Site[];
  rounds: Round[];
}

export interface Finding {
  index?: number;
  kind?: string;
  message: string;
}

export interface Entry {
  index: number;
  kind: string;
  createdAt: string;
  roundNumber: number | null;
  siteId: string | null;
  siteName: string | null;
  payload: Record<string, unknown> | null;
  findings: string[];
}

export interface RoundCheck {
  number: number;
  roundId: string;
  state: string;
  modelVersion: number;
  resultModelVersion?: number;
  invited: number;
  accepted: number;
  samples: number;
  recomputed: 'yes' | 'pruned' | 'missing' | 'mismatch' | 'n/a';
  ok: boolean;
  note: string;
  merkleRoot: string | null;
  aggregateDigest: string | null;
  findings: Finding[];
}

export interface Audit {
  file: string;
  federationId: string;
  federationName: string;
  exportedAt: string;
  entries: Entry[];
  kinds: string[];
  report: {
    ok: boolean;
    entries: number;
    headDigest: string;
    coordinatorKeyFingerprint: string;
    keyPinned: boolean;
    findings: Finding[];
  };
  rounds: RoundCheck[];
  fileFindings: Finding[];
}
