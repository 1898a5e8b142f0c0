/**
 * The coordinator's database schema (PostgreSQL dialect; PGlite and PostgreSQL run the same
 * migrations). Large binary objects live in the BlobStore; rows hold their keys and digests.
 */
import { sql } from 'drizzle-orm';
import {
  bigserial,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';
import type { ParticipationState, RoundState, SiteState } from '../rounds/states.js';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const federations = pgTable('federations', {
  id: text('id').primaryKey(),
  name: text('name').notNull().unique(),
  // The whole validated federation spec (model spec, HE preset, quorum, deadlines) as created.
  spec: jsonb('spec').notNull(),
  // sha256 of the canonical JSON of `spec`; what the ledger and sites pin.
  specHash: text('spec_hash').notNull(),
  parameterCount: integer('parameter_count').notNull(),
  minSites: integer('min_sites').notNull(),
  roundDeadlineSeconds: integer('round_deadline_seconds').notNull(),
  maxSamplesPerSite: integer('max_samples_per_site').notNull(),
  currentModelVersion: integer('current_model_version').notNull().default(0),
  // The site that generates the federation's HE keys (first enrolled unless the operator designates one).
  keyCustodianSiteId: text('key_custodian_site_id'),
  createdAt: ts('created_at').notNull().defaultNow(),
});

export const enrolmentTokens = pgTable('enrolment_tokens', {
  // Only the sha256 of a token is kept, so a database dump cannot be replayed to enrol.
  tokenHash: text('token_hash').primaryKey(),
  federationId: text('federation_id')
    .notNull()
    .references(() => federations.id),
  siteName: text('site_name').notNull(),
  expiresAt: ts('expires_at').notNull(),
  usedAt: ts('used_at'),
  siteId: text('site_id'),
  createdAt: ts('created_at').notNull().defaultNow(),
});

export const sites = pgTable(
  'sites',
  {
    id: text('id').primaryKey(),
    federationId: text('federation_id')
      .notNull()
      .references(() => federations.id),
    name: text('name').notNull(),
    state: text('state').$type<SiteState>().notNull(),
    // sha256 of the DER client certificate issued at enrolment: the site's identity on every call.
    certFingerprint: text('cert_fingerprint').notNull().unique(),
    certPem: text('cert_pem').notNull(),
    // Raw public keys, base64: Ed25519 (update signatures) and X25519 (HE key wrapping).
    signingPublicKey: text('signing_public_key').notNull(),
    keyWrapPublicKey: text('key_wrap_public_key').notNull(),
    backend: text('backend'),
    enrolledAt: ts('enrolled_at').notNull().defaultNow(),
    lastSeenAt: ts('last_seen_at'),
    revokedReason: text('revoked_reason'),
  },
  (t) => [uniqueIndex('sites_federation_name').on(t.federationId, t.name)],
);

export const rounds = pgTable(
  'rounds',
  {
    id: text('id').primaryKey(),
    federationId: text('federation_id')
      .notNull()
      .references(() => federations.id),
    number: integer('number').notNull(),
    state: text('state').$type<RoundState>().notNull(),
    // The global model version sites train from; set when the round opens.
    modelVersion: integer('model_version'),
    openedAt: ts('opened_at'),
    deadlineAt: ts('deadline_at'),
    closedAt: ts('closed_at'),
    failureReason: text('failure_reason'),
    totalSamples: integer('total_samples').notNull().default(0),
    // Running aggregate: blob key of sum(n_i * w_i) over the accepted updates so far. Updated in the
    // same transaction as the participant row, so a crash never loses or double-counts an update.
    aggregateKey: text('aggregate_key'),
    aggregateDigest: text('aggregate_digest'),
    resultModelVersion: integer('result_model_version'),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('rounds_federation_number').on(t.federationId, t.number),
    index('rounds_state').on(t.state),
  ],
);

export const participants = pgTable(
  'participants',
  {
    roundId: text('round_id')
      .notNull()
      .references(() => rounds.id),
    siteId: text('site_id')
      .notNull()
      .references(() => sites.id),
    state: text('state').$type<ParticipationState>().notNull(),
    sampleCount: integer('sample_count').notNull().default(0),
    metrics: jsonb('metrics').$type<Record<string, number>>().notNull().default({}),
    reason: text('reason'),
    updateDigest: text('update_digest'),
    updateKey: text('update_key'),
    // What the site signed over (canonical JSON) and its Ed25519 signature, base64: provenance.
    datasetCommitment: text('dataset_commitment'),
    signedPayload: text('signed_payload'),
    siteSignature: text('site_signature'),
    // The coordinator's signed receipt for the accepted update, base64.
    receiptSignature: text('receipt_signature'),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.roundId, t.siteId] })],
);

export const uploads = pgTable(
  'uploads',
  {
    roundId: text('round_id').notNull(),
    siteId: text('site_id').notNull(),
    // Staged bytes live in the BlobStore under this key until the digest checks out.
    stagingKey: text('staging_key').notNull(),
    totalBytes: integer('total_bytes').notNull(),
    digest: text('digest').notNull(),
    receivedBytes: integer('received_bytes').notNull().default(0),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.roundId, t.siteId] })],
);

export const modelVersions = pgTable(
  'model_versions',
  {
    federationId: text('federation_id')
      .notNull()
      .references(() => federations.id),
    version: integer('version').notNull(),
    // null for version 0: every site builds it from the spec's seed, so there is nothing to store.
    blobKey: text('blob_key'),
    digest: text('digest'),
    totalSamples: integer('total_samples').notNull().default(0),
    roundId: text('round_id'),
    meanLoss: doublePrecision('mean_loss'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.federationId, t.version] })],
);

export const keyBundles = pgTable('key_bundles', {
  federationId: text('federation_id')
    .primaryKey()
    .references(() => federations.id),
  custodianSiteId: text('custodian_site_id').notNull(),
  presetHash: text('preset_hash').notNull(),
  // Public HE parameters/keys only, in the BlobStore; the coordinator never holds a secret key.
  publicParametersKey: text('public_parameters_key').notNull(),
  publicParametersDigest: text('public_parameters_digest').notNull(),
  // Custodian's Ed25519 signature (base64) over the canonical bundle description.
  custodianSignature: text('custodian_signature').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
});

export const wrappedKeys = pgTable(
  'wrapped_keys',
  {
    federationId: text('federation_id')
      .notNull()
      .references(() => federations.id),
    siteId: text('site_id')
      .notNull()
      .references(() => sites.id),
    // The HE secret key wrapped for this site's X25519 key (ephemeral ECDH + HKDF + AES-256-GCM), base64.
    ephemeralPublicKey: text('ephemeral_public_key').notNull(),
    nonce: text('nonce').notNull(),
    ciphertext: text('ciphertext').notNull(),
    wrappedBySiteId: text('wrapped_by_site_id').notNull(),
    signature: text('signature').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.federationId, t.siteId] })],
);

export const ledgerEntries = pgTable(
  'ledger_entries',
  {
    federationId: text('federation_id').notNull(),
    // Position in this federation's hash chain, from 0.
    index: integer('index').notNull(),
    kind: text('kind').notNull(),
    // Canonical JSON exactly as hashed and signed; kept as text so its bytes never change.
    payload: text('payload').notNull(),
    previousDigest: text('previous_digest').notNull(),
    digest: text('digest').notNull(),
    // Coordinator's Ed25519 signature over the digest, base64.
    signature: text('signature').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.federationId, t.index] })],
);

export const outbox = pgTable(
  'outbox',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    topic: text('topic').notNull(),
    payload: jsonb('payload').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    publishedAt: ts('published_at'),
  },
  (t) => [index('outbox_unpublished').on(t.id).where(sql`${t.publishedAt} is null`)],
);

export const schema = {
  federations,
  enrolmentTokens,
  sites,
  rounds,
  participants,
  uploads,
  modelVersions,
  outbox,
};
export type Schema = typeof schema;
