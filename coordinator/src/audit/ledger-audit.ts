import {
  canonicalJson,
  keyBundleStatement,
  type LedgerEntryRecord,
  type ModelSpec,
  merkleRoot,
  sha256Hex,
  sharedParameterCount,
  verify,
  verifyReceipt,
  verifyUpdateSignature,
} from '@radfed/shared';
import { hePresetHash } from '../ledger/he-preset.js';
import type { FederationCreatedPayload, LedgerEntryKind, LedgerPayloads } from '../ledger/kinds.js';
import { isLedgerEntryKind, PAYLOAD_SCHEMAS } from '../ledger/payload-schemas.js';
import { assertNever } from '../rounds/states.js';

/** One thing that does not hold, pinned to the entry (or export record) that shows it. */
export interface Finding {
  /** The ledger entry that fails; undefined for a problem of the export file itself. */
  index: number | undefined;
  kind: string | undefined;
  message: string;
}

/** One accepted update as the ledger records it. */
export interface AuditedUpdate {
  index: number;
  roundId: string;
  siteId: string;
  digest: string;
  sampleCount: number;
}

export type AuditedRoundState = 'open' | 'sealed' | 'failed' | 'cancelled';

/** One round as the ledger tells it. */
export interface AuditedRound {
  roundId: string;
  number: number;
  state: AuditedRoundState;
  openedIndex: number | undefined;
  closedIndex: number | undefined;
  modelVersion: number;
  resultModelVersion: number | undefined;
  invited: Set<string>;
  /** In ledger order, which is the order the coordinator folded them. */
  accepted: AuditedUpdate[];
  totalSamples: number;
  aggregateDigest: string | undefined;
  reason: string | undefined;
  /** Sites whose stored updates the retention policy deleted, with the entry that says so. */
  pruned: { index: number; siteIds: Set<string> } | undefined;
}

/** An entry's kind with its parsed payload, one member per kind. */
type ParsedEntry = { [K in LedgerEntryKind]: { kind: K; payload: LedgerPayloads[K] } }[LedgerEntryKind];

interface AuditedSite {
  index: number;
  name: string;
  signingKey: Buffer;
  certificateFingerprint: string;
  revokedIndex: number | undefined;
}

/**
 * Replays a federation's ledger entry by entry and checks that each one is a legal next step:
 * the chain starts with the federation, rounds open on the current model version with enrolled sites,
 * every accepted update is signed by an enrolled, unrevoked, invited site over exactly the recorded
 * facts and carries the coordinator's receipt for this very entry, and every sealed round includes
 * exactly its accepted updates (Merkle root, sample total) and advances the model version by one.
 *
 * It needs no key but the coordinator's public one, and no blob: recomputing aggregates is the
 * verifier's next step, driven by {@link rounds} and {@link updates}.
 */
export class LedgerAudit {
  readonly findings: Finding[] = [];
  federation: FederationCreatedPayload | undefined;
  readonly sites = new Map<string, AuditedSite>();
  readonly rounds = new Map<string, AuditedRound>();
  /** Accepted updates by the index of their entry. */
  readonly updates = new Map<number, AuditedUpdate>();
  /** Public HE parameter digests of published key bundles, by entry index. */
  readonly keyBundles = new Map<number, string>();
  private open: AuditedRound | undefined;
  private modelVersion = 0;
  private lastNumber = 0;
  private minSites = 1;
  private maxSamples = Number.POSITIVE_INFINITY;

  constructor(
    private readonly federationId: string,
    private readonly coordinatorKey: Uint8Array,
  ) {}

  /** Rounds in the order they first appear in the ledger. */
  get roundList(): AuditedRound[] {
    return [...this.rounds.values()];
  }

  fail(index: number | undefined, kind: string | undefined, message: string): void {
    this.findings.push({ index, kind, message });
  }

  /** Checks and applies one entry (whose chain position and signature were checked already). */
  apply(entry: LedgerEntryRecord): void {
    const fail = (message: string) => this.fail(entry.index, entry.kind, message);
    if (!isLedgerEntryKind(entry.kind)) {
      fail(`is of a kind this verifier does not know`);
      return;
    }
    if (entry.index === 0 && entry.kind !== 'federation.created') {
      fail('starts the chain, but a chain must start with federation.created');
      return;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(entry.payload);
    } catch {
      fail('has a payload that is not JSON');
      return;
    }
    const parsed = PAYLOAD_SCHEMAS[entry.kind].safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      fail(
        `is not a well-formed ${entry.kind} record (${issue.path.join('.') || 'payload'}: ${issue.message})`,
      );
      return;
    }
    this.dispatch(entry, { kind: entry.kind, payload: parsed.data } as ParsedEntry, fail);
  }

  private dispatch(entry: LedgerEntryRecord, e: ParsedEntry, fail: (message: string) => void): void {
    switch (e.kind) {
      case 'federation.created':
        this.created(entry, e.payload, fail);
        break;
      case 'site.enrolled':
        this.enrolled(entry, e.payload, fail);
        break;
      case 'site.revoked':
        this.revoked(entry, e.payload, fail);
        break;
      case 'key_bundle.published':
        this.keyBundle(entry, e.payload, fail);
        break;
      case 'round.opened':
        this.opened(entry, e.payload, fail);
        break;
      case 'update.accepted':
        this.accepted(entry, e.payload, fail);
        break;
      case 'round.sealed':
        this.sealed(entry, e.payload, fail);
        break;
      case 'round.failed':
      case 'round.cancelled':
        this.closed(entry, e.kind, e.payload, fail);
        break;
      case 'round.updates_pruned':
        this.pruned(entry, e.payload, fail);
        break;
      default:
        assertNever(e);
    }
  }

  private created(
    entry: LedgerEntryRecord,
    p: LedgerPayloads['federation.created'],
    fail: (m: string) => void,
  ): void {
    if (entry.index !== 0 || this.federation) {
      fail('creates the federation a second time');
      return;
    }
    this.federation = p;
    if (p.federationId !== this.federationId) {
      fail(`creates federation ${p.federationId}, but the export is of ${this.federationId}`);
    }
    if (sha256Hex(canonicalJson(p.spec)) !== p.specHash)
      fail('records a spec hash that is not the hash of its spec');
    if (p.spec.name !== p.name || p.spec.hePreset !== p.hePreset) {
      fail('records a name or HE preset that differs from its spec');
    }
    if (hePresetHash(p.hePreset) !== p.hePresetHash) {
      fail(`records an HE preset hash that is not the hash of preset "${p.hePreset}"`);
    }
    try {
      if (sharedParameterCount(p.spec.modelSpec as ModelSpec) !== p.parameterCount) {
        fail("records a parameter count that does not match its model spec's shared tensors");
      }
    } catch {
      fail('records a model spec this verifier cannot read');
    }
    if (p.coordinatorSigningKey !== Buffer.from(this.coordinatorKey).toString('base64')) {
      fail('names a coordinator key other than the one this ledger is verified against');
    }
    const minSites = p.spec.minSites;
    const maxSamples = p.spec.maxSamplesPerSite;
    if (typeof minSites === 'number') this.minSites = minSites;
    if (typeof maxSamples === 'number') this.maxSamples = maxSamples;
  }

  private enrolled(
    entry: LedgerEntryRecord,
    p: LedgerPayloads['site.enrolled'],
    fail: (m: string) => void,
  ): void {
    if (this.sites.has(p.siteId)) {
      fail(`enrols site ${p.siteId} a second time`);
      return;
    }
    const signingKey = Buffer.from(p.signingPublicKey, 'base64');
    if (signingKey.length !== 32) fail(`records a signing key for ${p.siteId} that is not 32 bytes`);
    this.sites.set(p.siteId, {
      index: entry.index,
      name: p.siteName,
      signingKey,
      certificateFingerprint: p.certificateFingerprint,
      revokedIndex: undefined,
    });
  }

  private revoked(
    entry: LedgerEntryRecord,
    p: LedgerPayloads['site.revoked'],
    fail: (m: string) => void,
  ): void {
    const site = this.sites.get(p.siteId);
    if (!site) {
      fail(`revokes site ${p.siteId}, which the ledger never enrolled`);
      return;
    }
    site.revokedIndex ??= entry.index;
  }

  private keyBundle(
    entry: LedgerEntryRecord,
    p: LedgerPayloads['key_bundle.published'],
    fail: (m: string) => void,
  ): void {
    const problem = this.siteProblem(p.custodianSiteId);
    if (problem) fail(`is published by a custodian that ${problem}`);
    if (this.federation && p.presetHash !== this.federation.hePresetHash) {
      fail("publishes a key for another HE preset than the federation's");
    }
    const custodian = this.sites.get(p.custodianSiteId);
    const claim = {
      federationId: this.federationId,
      custodianSiteId: p.custodianSiteId,
      presetHash: p.presetHash,
      keyId: p.publicParametersDigest,
    };
    if (
      custodian &&
      !safeVerify(() => verify(custodian.signingKey, keyBundleStatement(claim), b64(p.custodianSignature)))
    ) {
      fail(`carries a key bundle signature that is not custodian ${p.custodianSiteId}'s`);
    }
    this.keyBundles.set(entry.index, p.publicParametersDigest);
  }

  private opened(
    entry: LedgerEntryRecord,
    p: LedgerPayloads['round.opened'],
    fail: (m: string) => void,
  ): void {
    if (this.rounds.has(p.roundId)) {
      fail(`opens round ${p.number} (${p.roundId}) a second time`);
      return;
    }
    if (this.open) fail(`opens round ${p.number} while round ${this.open.number} is still open`);
    if (p.number <= this.lastNumber) fail(`opens round ${p.number} after round ${this.lastNumber}`);
    if (p.modelVersion !== this.modelVersion) {
      fail(`trains model version ${p.modelVersion}, but the current version is ${this.modelVersion}`);
    }
    if (p.invitedSiteIds.length < this.minSites) {
      fail(`invites ${p.invitedSiteIds.length} sites, fewer than the quorum of ${this.minSites}`);
    }
    for (const siteId of p.invitedSiteIds) {
      const problem = this.siteProblem(siteId);
      if (problem) fail(`invites site ${siteId}, which ${problem}`);
    }
    const round: AuditedRound = {
      roundId: p.roundId,
      number: p.number,
      state: 'open',
      openedIndex: entry.index,
      closedIndex: undefined,
      modelVersion: p.modelVersion,
      resultModelVersion: undefined,
      invited: new Set(p.invitedSiteIds),
      accepted: [],
      totalSamples: 0,
      aggregateDigest: undefined,
      reason: undefined,
      pruned: undefined,
    };
    this.rounds.set(p.roundId, round);
    this.open = round;
    this.lastNumber = Math.max(this.lastNumber, p.number);
  }

  private accepted(
    entry: LedgerEntryRecord,
    p: LedgerPayloads['update.accepted'],
    fail: (m: string) => void,
  ): void {
    const round = this.rounds.get(p.roundId);
    if (round?.state !== 'open') {
      fail(`accepts an update to round ${p.roundNumber}, which is ${round ? round.state : 'not open'}`);
      return;
    }
    const who = `site ${p.siteId}`;
    const problem = this.siteProblem(p.siteId);
    if (problem) fail(`accepts an update from ${who}, which ${problem}`);
    if (!round.invited.has(p.siteId))
      fail(`accepts an update from ${who}, which round ${round.number} did not invite`);
    if (round.accepted.some((u) => u.siteId === p.siteId)) {
      fail(`accepts a second update from ${who} in round ${round.number}`);
    }
    if (p.roundNumber !== round.number) fail(`names round number ${p.roundNumber} for round ${round.number}`);
    if (p.modelVersion !== round.modelVersion) {
      fail(
        `records an update trained from version ${p.modelVersion} in a round on version ${round.modelVersion}`,
      );
    }
    if (this.federation && p.encoding !== this.federation.updateEncoding) {
      fail(`records encoding "${p.encoding}", but the federation takes "${this.federation.updateEncoding}"`);
    }
    if (p.sampleCount < 1 || p.sampleCount > this.maxSamples) {
      fail(`records ${p.sampleCount} samples, outside 1..${this.maxSamples}`);
    }
    const site = this.sites.get(p.siteId);
    if (!p.siteSignature) {
      fail(`records an update ${who} did not sign`);
    } else if (site && !safeVerify(() => verifyUpdateSignature(site.signingKey, p, b64(p.siteSignature)))) {
      fail(`records facts that ${who} did not sign: its signature does not verify over them`);
    }
    const receipt = {
      federationId: this.federationId,
      roundId: p.roundId,
      siteId: p.siteId,
      updateDigest: p.updateDigest,
      ledgerIndex: entry.index,
      acceptedAt: entry.createdAt,
    };
    if (!safeVerify(() => verifyReceipt(this.coordinatorKey, receipt, b64(p.receiptSignature)))) {
      fail("carries a receipt signature that is not the coordinator's over this entry");
    }
    const update: AuditedUpdate = {
      index: entry.index,
      roundId: p.roundId,
      siteId: p.siteId,
      digest: p.updateDigest,
      sampleCount: p.sampleCount,
    };
    round.accepted.push(update);
    round.totalSamples += p.sampleCount;
    this.updates.set(entry.index, update);
  }

  private sealed(
    entry: LedgerEntryRecord,
    p: LedgerPayloads['round.sealed'],
    fail: (m: string) => void,
  ): void {
    const round = this.rounds.get(p.roundId);
    if (round?.state !== 'open') {
      fail(`seals round ${p.number}, which is ${round ? round.state : 'not open'}`);
      return;
    }
    this.close(round, 'sealed', entry.index);
    round.resultModelVersion = p.resultModelVersion;
    round.aggregateDigest = p.aggregateDigest;
    const included = round.accepted.map((u) => u.siteId).sort();
    if (canonicalJson(included) !== canonicalJson(p.includedSiteIds)) {
      fail(
        `includes sites [${p.includedSiteIds.join(', ')}], but the ledger accepted updates from [${included.join(', ')}]`,
      );
    }
    if (included.length < this.minSites)
      fail(`seals with ${included.length} updates, below the quorum of ${this.minSites}`);
    if (p.totalSamples !== round.totalSamples) {
      fail(`records ${p.totalSamples} samples, but its accepted updates hold ${round.totalSamples}`);
    }
    const bySite = [...round.accepted].sort((a, b) =>
      a.siteId < b.siteId ? -1 : a.siteId > b.siteId ? 1 : 0,
    );
    const root = merkleRoot(bySite.map((u) => Buffer.from(u.digest, 'hex'))).toString('hex');
    if (root !== p.updatesMerkleRoot)
      fail('records a Merkle root that is not the root of its accepted update digests');
    if (p.modelVersion !== round.modelVersion)
      fail(`names version ${p.modelVersion} for a round on ${round.modelVersion}`);
    if (p.resultModelVersion !== this.modelVersion + 1) {
      fail(
        `produces model version ${p.resultModelVersion}, but the next version is ${this.modelVersion + 1}`,
      );
    }
    this.modelVersion = Math.max(this.modelVersion, p.resultModelVersion);
  }

  private closed(
    entry: LedgerEntryRecord,
    kind: 'round.failed' | 'round.cancelled',
    p: LedgerPayloads['round.failed'],
    fail: (m: string) => void,
  ): void {
    const state = kind === 'round.failed' ? 'failed' : 'cancelled';
    let round = this.rounds.get(p.roundId);
    if (!round && state === 'cancelled') {
      // A scheduled round can be cancelled before it ever opened.
      round = {
        roundId: p.roundId,
        number: p.number,
        state: 'open',
        openedIndex: undefined,
        closedIndex: undefined,
        modelVersion: this.modelVersion,
        resultModelVersion: undefined,
        invited: new Set(),
        accepted: [],
        totalSamples: 0,
        aggregateDigest: undefined,
        reason: undefined,
        pruned: undefined,
      };
      this.rounds.set(p.roundId, round);
      this.lastNumber = Math.max(this.lastNumber, p.number);
    }
    if (round?.state !== 'open') {
      fail(`closes round ${p.number}, which is ${round ? round.state : 'not open'}`);
      return;
    }
    if (state === 'failed' && round.accepted.length >= this.minSites) {
      fail(
        `fails round ${p.number} although ${round.accepted.length} sites submitted (quorum ${this.minSites})`,
      );
    }
    this.close(round, state, entry.index);
    round.reason = p.reason;
  }

  private pruned(
    entry: LedgerEntryRecord,
    p: LedgerPayloads['round.updates_pruned'],
    fail: (m: string) => void,
  ): void {
    const round = this.rounds.get(p.roundId);
    if (!round || round.state === 'open') {
      fail(`prunes the updates of round ${p.number}, which is ${round ? 'still open' : 'unknown'}`);
      return;
    }
    const accepted = new Set(round.accepted.map((u) => u.siteId));
    const stray = p.siteIds.filter((s) => !accepted.has(s));
    if (stray.length > 0) fail(`prunes updates round ${p.number} never accepted (from ${stray.join(', ')})`);
    round.pruned ??= { index: entry.index, siteIds: new Set() };
    for (const s of p.siteIds) round.pruned.siteIds.add(s);
  }

  private close(round: AuditedRound, state: AuditedRoundState, index: number): void {
    round.state = state;
    round.closedIndex = index;
    if (this.open === round) this.open = undefined;
  }

  /** Why a site may not act now (unknown or revoked), or undefined when it may. */
  private siteProblem(siteId: string): string | undefined {
    const site = this.sites.get(siteId);
    if (!site) return 'the ledger never enrolled';
    if (site.revokedIndex !== undefined) return `was revoked at entry #${site.revokedIndex}`;
    return undefined;
  }
}

function b64(text: string): Buffer {
  return Buffer.from(text, 'base64');
}

/** Signature checks on recorded keys: a malformed key fails the check rather than the run. */
function safeVerify(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}
