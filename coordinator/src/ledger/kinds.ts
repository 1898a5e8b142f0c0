/**
 * The facts each ledger entry records. One union of kinds, one payload shape per kind; payloads are
 * canonical JSON (hex digests, base64 keys and signatures, ISO times), so an auditor needs nothing
 * but the entry to re-check it.
 *
 * Kinds:
 * - `federation.created`   the federation's spec (model spec, HE preset, quorum, deadlines) and hashes
 * - `site.enrolled`        a site's certificate fingerprint and public signing / key-wrap keys
 * - `site.revoked`         a site was revoked (its later updates are refused, and would fail audit)
 * - `key_bundle.published` the key custodian's public HE material (digest) and signature
 * - `round.opened`         which sites were invited to train which model version
 * - `update.accepted`      one site's update: digest, samples, dataset commitment, metrics, and both
 *                          the site's signature and the coordinator's receipt signature
 * - `round.sealed`         included sites, Merkle root of their update digests, aggregate digest,
 *                          the new model version
 * - `round.failed` / `round.cancelled`  why the round produced no model
 * - `round.updates_pruned` the retention policy deleted a closed round's stored updates (their
 *                          digests stay in the ledger; the aggregate can no longer be recomputed)
 */
export type LedgerEntryKind =
  | 'federation.created'
  | 'site.enrolled'
  | 'site.revoked'
  | 'key_bundle.published'
  | 'round.opened'
  | 'update.accepted'
  | 'round.sealed'
  | 'round.failed'
  | 'round.cancelled'
  | 'round.updates_pruned';

export const LEDGER_ENTRY_KINDS: readonly LedgerEntryKind[] = [
  'federation.created',
  'site.enrolled',
  'site.revoked',
  'key_bundle.published',
  'round.opened',
  'update.accepted',
  'round.sealed',
  'round.failed',
  'round.cancelled',
  'round.updates_pruned',
];

export interface FederationCreatedPayload {
  federationId: string;
  name: string;
  /** The federation spec exactly as hashed into `specHash` (model spec, HE preset, quorum, ...). */
  spec: Record<string, unknown>;
  specHash: string;
  hePreset: string;
  hePresetHash: string;
  parameterCount: number;
  /** The update encoding the federation's aggregator takes, e.g. `plain-f64-weighted`. */
  updateEncoding: string;
  /** The coordinator's ledger key (raw Ed25519, base64) that signs this chain. */
  coordinatorSigningKey: string;
  /** SHA-256 (hex) of the federation CA certificate's DER: pins the site certificates. */
  caCertificateFingerprint: string;
}

export interface SiteEnrolledPayload {
  siteId: string;
  siteName: string;
  certificateFingerprint: string;
  /** Raw Ed25519 key, base64: verifies this site's update signatures. */
  signingPublicKey: string;
  /** Raw X25519 key, base64: what HE keys are wrapped for. */
  keyWrapPublicKey: string;
  agentVersion: string;
}

export interface SiteRevokedPayload {
  siteId: string;
  reason: string;
}

export interface KeyBundlePublishedPayload {
  custodianSiteId: string;
  presetHash: string;
  publicParametersDigest: string;
  /** The custodian's Ed25519 signature over its bundle description, base64. */
  custodianSignature: string;
  wrappedForSiteIds: string[];
}

export interface RoundOpenedPayload {
  roundId: string;
  number: number;
  modelVersion: number;
  invitedSiteIds: string[];
  deadlineAt: string;
}

export interface UpdateAcceptedPayload {
  roundId: string;
  roundNumber: number;
  siteId: string;
  modelVersion: number;
  updateDigest: string;
  updateBytes: number;
  encoding: string;
  sampleCount: number;
  datasetCommitment: string;
  metrics: Record<string, number>;
  /** The site's Ed25519 signature over the signed-update facts, base64; empty when unsigned. */
  siteSignature: string;
  /** The coordinator's signature over the receipt it returned for this entry, base64. */
  receiptSignature: string;
}

export interface RoundSealedPayload {
  roundId: string;
  number: number;
  /** The version the round trained from. */
  modelVersion: number;
  resultModelVersion: number;
  /** Sorted. */
  includedSiteIds: string[];
  /** Merkle root ({@link merkleRoot}) over the included updates' digests, in `includedSiteIds` order. */
  updatesMerkleRoot: string;
  /** SHA-256 of the aggregate (the new model version's bytes). */
  aggregateDigest: string;
  totalSamples: number;
}

export interface RoundClosedPayload {
  roundId: string;
  number: number;
  reason: string;
}

export interface UpdatesPrunedPayload {
  roundId: string;
  number: number;
  siteIds: string[];
  /** The policy that pruned them: updates of this many most recent closed rounds are kept. */
  keepRounds: number;
}

export interface LedgerPayloads {
  'federation.created': FederationCreatedPayload;
  'site.enrolled': SiteEnrolledPayload;
  'site.revoked': SiteRevokedPayload;
  'key_bundle.published': KeyBundlePublishedPayload;
  'round.opened': RoundOpenedPayload;
  'update.accepted': UpdateAcceptedPayload;
  'round.sealed': RoundSealedPayload;
  'round.failed': RoundClosedPayload;
  'round.cancelled': RoundClosedPayload;
  'round.updates_pruned': UpdatesPrunedPayload;
}
