/**
 * The offline source: an audit export read from disk and checked with the same `verifyAuditExport`
 * that `radfed audit verify` runs. The federation, sites and rounds are told from the signed
 * ledger alone, so the auditor sees the same pages as the operator, plus the ledger itself and each
 * round's verification. No coordinator is contacted.
 */
import { AuditExportFormatError, type ExportHeader, readAuditExport } from '@radfed/shared';
import { type Finding, type RoundVerdict, type VerifyReport, verifyAuditExport } from '../audit/verify.js';
import { UsageError } from '../errors.js';
import type { LedgerPayloads } from '../ledger/kinds.js';
import { DashboardError, type DashboardSource } from './source.js';
import {
  custodyView,
  durationSeconds,
  type FederationDetail,
  type FederationView,
  meanLoss,
  type RoundView,
  type SiteView,
} from './views.js';

export interface LedgerEntryView {
  index: number;
  kind: string;
  createdAt: string;
  /** The round the entry belongs to, when it belongs to one. */
  roundNumber: number | null;
  siteId: string | null;
  /** The site's name as it enrolled. */
  siteName: string | null;
  payload: Record<string, unknown> | null;
  /** What verification found wrong with this entry. */
  findings: string[];
}

export interface RoundCheckView extends RoundVerdict {
  merkleRoot: string | null;
  aggregateDigest: string | null;
  findings: Finding[];
}

export interface AuditView {
  file: string;
  federationId: string;
  federationName: string;
  exportedAt: string;
  entries: LedgerEntryView[];
  kinds: string[];
  report: VerifyReport;
  rounds: RoundCheckView[];
  /** Problems of the file itself (no entry to pin them to). */
  fileFindings: Finding[];
}

type Payload = Record<string, unknown>;

/**
 * Reads and verifies `path`.
 *
 * @throws UsageError when the file is missing or is not an audit export.
 */
export async function loadAuditSource(path: string, coordinatorKey?: Uint8Array): Promise<AuditSource> {
  let header: ExportHeader | undefined;
  const entries: LedgerEntryView[] = [];
  let report: VerifyReport;
  try {
    for await (const r of readAuditExport(path)) {
      if (r.type === 'header') header = r;
      else if (r.type === 'entry') {
        let payload: Payload | null = null;
        try {
          payload = JSON.parse(r.payload) as Payload;
        } catch {
          // Verification names the entry; the page shows it without a payload.
        }
        entries.push({
          index: r.index,
          kind: r.kind,
          createdAt: r.createdAt,
          roundNumber: num(payload?.number ?? payload?.roundNumber),
          siteId: str(payload?.siteId ?? payload?.custodianSiteId),
          siteName: null,
          payload,
          findings: [],
        });
      }
    }
    report = await verifyAuditExport(path, coordinatorKey ? { coordinatorKey } : {});
  } catch (err) {
    if (err instanceof AuditExportFormatError)
      throw new UsageError(`${path} is not a readable audit export: ${err.message}`);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError(`No such file: ${path}`);
    if ((err as NodeJS.ErrnoException).code === 'EISDIR')
      throw new UsageError(`${path} is a directory; give the export file.`);
    throw err;
  }
  const names = new Map<string, string>();
  for (const e of entries) {
    if (e.kind === 'site.enrolled' && e.siteId) names.set(e.siteId, String(e.payload?.siteName ?? e.siteId));
  }
  for (const e of entries) if (e.siteId) e.siteName = names.get(e.siteId) ?? e.siteId;
  const byIndex = new Map(entries.map((e) => [e.index, e]));
  for (const f of report.findings) if (f.index !== undefined) byIndex.get(f.index)?.findings.push(f.message);
  return new AuditSource(path, header!, entries, report);
}

export class AuditSource implements DashboardSource {
  private readonly detail: FederationDetail;
  private readonly view: AuditView;

  constructor(file: string, header: ExportHeader, entries: LedgerEntryView[], report: VerifyReport) {
    this.detail = tell(header, entries);
    const roundOf = new Map<string, number>();
    for (const e of entries) {
      const id = str(e.payload?.roundId);
      if (id && e.roundNumber !== null) roundOf.set(id, e.roundNumber);
    }
    const sealedPayload = new Map(
      entries.filter((e) => e.kind === 'round.sealed').map((e) => [e.roundNumber, e.payload]),
    );
    this.view = {
      file,
      federationId: header.federationId,
      federationName: header.federationName,
      exportedAt: header.exportedAt,
      entries,
      kinds: [...new Set(entries.map((e) => e.kind))].sort(),
      report,
      rounds: report.rounds.map((v) => ({
        ...v,
        merkleRoot: str(sealedPayload.get(v.number)?.updatesMerkleRoot),
        aggregateDigest: str(sealedPayload.get(v.number)?.aggregateDigest),
        findings: report.findings.filter(
          (f) => f.index !== undefined && entries.find((e) => e.index === f.index)?.roundNumber === v.number,
        ),
      })),
      fileFindings: report.findings.filter((f) => f.index === undefined),
    };
  }

  info() {
    return { mode: 'audit' as const, title: `audit export ${this.view.file}` };
  }

  async federations(): Promise<FederationView[]> {
    return [this.detail.federation];
  }

  async federation(id: string): Promise<FederationDetail> {
    const f = this.detail.federation;
    if (id !== f.id && id !== f.name)
      throw new DashboardError(404, `This export holds federation ${f.name} (${f.id}), not "${id}".`);
    return this.detail;
  }

  async audit(): Promise<AuditView> {
    return this.view;
  }

  close(): void {}
}

/** The federation, its sites and rounds as the ledger tells them. */
function tell(header: ExportHeader, entries: LedgerEntryView[]): FederationDetail {
  const names = new Map<string, string>();
  const sites = new Map<string, SiteView>();
  const rounds = new Map<string, RoundView>();
  let created: Partial<LedgerPayloads['federation.created']> = {};
  let custodian = '';
  let published = false;
  for (const e of entries) {
    const p = (e.payload ?? {}) as Payload;
    switch (e.kind) {
      case 'federation.created':
        created = p as Partial<LedgerPayloads['federation.created']>;
        break;
      case 'site.enrolled': {
        const id = String(p.siteId);
        names.set(id, String(p.siteName));
        sites.set(id, {
          id,
          name: String(p.siteName),
          state: 'enrolled',
          connected: null,
          lastContact: e.createdAt,
          roundsContributed: 0,
        });
        break;
      }
      case 'site.revoked': {
        const s = sites.get(String(p.siteId));
        if (s) s.state = 'revoked';
        break;
      }
      case 'key_bundle.published':
        custodian = String(p.custodianSiteId);
        published = true;
        break;
      case 'round.opened': {
        const invited = (p.invitedSiteIds as string[] | undefined) ?? [];
        rounds.set(String(p.roundId), {
          id: String(p.roundId),
          number: Number(p.number),
          state: 'open',
          modelVersion: Number(p.modelVersion),
          resultModelVersion: null,
          openedAt: e.createdAt,
          closedAt: null,
          deadline: str(p.deadlineAt),
          durationSeconds: null,
          participants: invited.map((siteId) => ({
            siteId,
            siteName: names.get(siteId) ?? siteId,
            state: 'invited',
            samples: 0,
            metrics: {},
            reason: '',
          })),
          totalSamples: 0,
          meanLoss: null,
          failureReason: '',
        });
        break;
      }
      case 'update.accepted': {
        const r = rounds.get(String(p.roundId));
        const part = r?.participants.find((x) => x.siteId === p.siteId);
        if (part) {
          part.state = 'submitted';
          part.samples = Number(p.sampleCount);
          part.metrics = (p.metrics as Record<string, number>) ?? {};
        }
        const s = sites.get(String(p.siteId));
        if (s) s.lastContact = e.createdAt;
        break;
      }
      case 'round.sealed':
      case 'round.failed':
      case 'round.cancelled': {
        const r = rounds.get(String(p.roundId));
        if (!r) break;
        r.state = e.kind.slice('round.'.length);
        r.closedAt = e.createdAt;
        r.durationSeconds = durationSeconds(r.openedAt, r.closedAt);
        r.failureReason = str(p.reason) ?? '';
        if (e.kind === 'round.sealed') {
          r.resultModelVersion = Number(p.resultModelVersion);
          r.totalSamples = Number(p.totalSamples);
          for (const id of (p.includedSiteIds as string[] | undefined) ?? []) {
            const s = sites.get(id);
            if (s) s.roundsContributed++;
          }
        }
        // Invited sites with no accepted update did not take part; the ledger records no reason.
        for (const x of r.participants) if (x.state === 'invited') x.state = 'missed';
        r.meanLoss = meanLoss(r.participants);
        break;
      }
    }
  }
  const spec = (created.spec ?? {}) as Payload;
  const sealed = [...rounds.values()].filter((r) => r.state === 'sealed');
  const preset = created.hePreset ?? '';
  const federation: FederationView = {
    id: header.federationId,
    name: header.federationName,
    hePreset: preset,
    quorum: Number(spec.minSites ?? 0),
    deadlineSeconds: Number(spec.roundDeadlineSeconds ?? 0),
    modelVersion: sealed.length ? Math.max(...sealed.map((r) => r.resultModelVersion ?? 0)) : 0,
    parameterCount: Number(created.parameterCount ?? 0),
    createdAt: entries[0]?.createdAt ?? null,
    custody: custodyView(preset !== 'plaintext' && preset !== '', custodian, published, names),
  };
  return {
    federation,
    sites: [...sites.values()],
    rounds: [...rounds.values()].sort((a, b) => a.number - b.number),
  };
}

function num(v: unknown): number | null {
  return typeof v === 'number' ? v : null;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}
