export type {
  CustodyView as Custody,
  FederationDetail as Detail,
  FederationView as Federation,
  ParticipantView as Participant,
  RoundView as Round,
  SiteView as Site,
} from './view-types.js';
/** The rest of the JSON the dashboard server sends; mirrors coordinator/src/dashboard/audit.ts. */
export interface Info {
  mode: 'live' | 'audit';
  title: string;
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
