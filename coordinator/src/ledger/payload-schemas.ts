import { z } from 'zod';
import type { LedgerEntryKind, LedgerPayloads } from './kinds.js';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lower-case hex SHA-256');
const id = z.string().min(1);
const count = z.number().int().min(0);
const b64 = z.string();

/**
 * The shape of each kind's payload, for the verifier: an entry whose payload does not parse as its
 * kind is named as failing rather than half-checked. Strict, so no unexplained field rides along.
 */
export const PAYLOAD_SCHEMAS: { [K in LedgerEntryKind]: z.ZodType<LedgerPayloads[K]> } = {
  'federation.created': z
    .object({
      federationId: id,
      name: z.string(),
      spec: z.record(z.string(), z.unknown()),
      specHash: hex64,
      hePreset: z.string(),
      hePresetHash: hex64,
      parameterCount: count,
      updateEncoding: z.string(),
      coordinatorSigningKey: b64,
      caCertificateFingerprint: hex64,
    })
    .strict(),
  'site.enrolled': z
    .object({
      siteId: id,
      siteName: z.string(),
      certificateFingerprint: hex64,
      signingPublicKey: b64,
      keyWrapPublicKey: b64,
      agentVersion: z.string(),
    })
    .strict(),
  'site.revoked': z.object({ siteId: id, reason: z.string() }).strict(),
  'key_bundle.published': z
    .object({
      custodianSiteId: id,
      presetHash: z.string(),
      publicParametersDigest: hex64,
      custodianSignature: b64,
      wrappedForSiteIds: z.array(id),
    })
    .strict(),
  'round.opened': z
    .object({
      roundId: id,
      number: count,
      modelVersion: count,
      invitedSiteIds: z.array(id),
      deadlineAt: z.string(),
    })
    .strict(),
  'update.accepted': z
    .object({
      roundId: id,
      roundNumber: count,
      siteId: id,
      modelVersion: count,
      updateDigest: hex64,
      updateBytes: count,
      encoding: z.string(),
      sampleCount: count,
      datasetCommitment: z.string(),
      metrics: z.record(z.string(), z.number()),
      siteSignature: b64,
      receiptSignature: b64,
    })
    .strict(),
  'round.sealed': z
    .object({
      roundId: id,
      number: count,
      modelVersion: count,
      resultModelVersion: count,
      includedSiteIds: z.array(id),
      updatesMerkleRoot: hex64,
      aggregateDigest: hex64,
      totalSamples: count,
    })
    .strict(),
  'round.failed': z.object({ roundId: id, number: count, reason: z.string() }).strict(),
  'round.cancelled': z.object({ roundId: id, number: count, reason: z.string() }).strict(),
  'round.updates_pruned': z
    .object({ roundId: id, number: count, siteIds: z.array(id), keepRounds: count })
    .strict(),
};

export function isLedgerEntryKind(kind: string): kind is LedgerEntryKind {
  return Object.hasOwn(PAYLOAD_SCHEMAS, kind);
}
