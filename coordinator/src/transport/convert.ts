/**
 * The one translation layer between generated radfed.v1 types and the coordinator's domain rows.
 * Nothing outside transport/ imports generated types.
 */

import * as pb from '@radfed/proto';
import { type HePreset, type ModelSpec, presetHash } from '@radfed/shared';
import type { KeyBundleView, KeyWork, SubmittedBundle } from '../custody/service.js';
import { federationSpec } from '../federations/service.js';
import { federationHe } from '../federations/spec.js';
import type { IssuedReceipt } from '../ledger/receipts.js';
import type { ParticipationState, RoundState, SiteState } from '../rounds/states.js';
import type { FederationRow } from '../store/queries/federations.js';
import type { LedgerEntryRow } from '../store/queries/ledger.js';
import type { ParticipantRow, RoundRow } from '../store/queries/rounds.js';
import type { SiteRow } from '../store/queries/sites.js';

const ROUND_STATES: Record<RoundState, pb.RoundState> = {
  scheduled: pb.RoundState.ROUND_STATE_SCHEDULED,
  open: pb.RoundState.ROUND_STATE_OPEN,
  sealing: pb.RoundState.ROUND_STATE_SEALING,
  sealed: pb.RoundState.ROUND_STATE_SEALED,
  failed: pb.RoundState.ROUND_STATE_FAILED,
  cancelled: pb.RoundState.ROUND_STATE_CANCELLED,
};

const SITE_STATES: Record<SiteState, pb.SiteState> = {
  enrolled: pb.SiteState.SITE_STATE_ENROLLED,
  revoked: pb.SiteState.SITE_STATE_REVOKED,
};

const PARTICIPATION: Record<ParticipationState, pb.ParticipationState> = {
  invited: pb.ParticipationState.PARTICIPATION_STATE_INVITED,
  submitted: pb.ParticipationState.PARTICIPATION_STATE_SUBMITTED,
  declined: pb.ParticipationState.PARTICIPATION_STATE_DECLINED,
  missed: pb.ParticipationState.PARTICIPATION_STATE_MISSED,
};

export function modelSpecToProto(spec: ModelSpec): pb.ModelSpec {
  const options = spec.objectiveOptions;
  return {
    ...pb.modelSpecCoreFields(spec),
    standardisation: spec.standardisation ?? '',
    augmentation: spec.augmentation ? { ...spec.augmentation } : undefined,
    objectiveOptions: options
      ? {
          temperature: options.temperature ?? 0,
          maskRatio: options.maskRatio ?? 0,
          maskPatchSize: options.maskPatchSize ?? 0,
        }
      : undefined,
  };
}

/** Proto model spec to the plain object the federation spec schema validates (undefined if absent). */
export function modelSpecFromProto(spec: pb.ModelSpec | undefined): ModelSpec | undefined {
  return pb.modelSpecFromWire(spec) as ModelSpec | undefined;
}

export function hePresetToProto(preset: HePreset): pb.HePreset {
  return {
    name: preset.name,
    scheme: preset.scheme,
    polyModulusDegree: preset.polyModulusDegree,
    coeffModulusBits: [...preset.coeffModulusBits],
    plainModulus: BigInt(preset.plainModulus),
    scale: preset.scale,
    presetHash: Buffer.from(presetHash(preset), 'hex'),
  };
}

/** A federation on the wire; `heKeysPublished` is filled in where the caller looked it up. */
export function federationToProto(row: FederationRow, heKeysPublished = false): pb.Federation {
  const spec = federationSpec(row);
  const he = federationHe(row);
  return {
    id: row.id,
    name: row.name,
    modelSpec: modelSpecToProto(spec.modelSpec as ModelSpec),
    hePreset: hePresetToProto(he.preset),
    minSites: row.minSites,
    roundDeadlineSeconds: row.roundDeadlineSeconds,
    maxSamplesPerSite: row.maxSamplesPerSite,
    specHash: Buffer.from(row.specHash, 'hex'),
    createdAt: row.createdAt,
    currentModelVersion: BigInt(row.currentModelVersion),
    parameterCount: row.parameterCount,
    maxSites: he.maxSites,
    maxAbsWeight: he.maxAbsWeight,
    keyCustodianSiteId: row.keyCustodianSiteId ?? '',
    heKeysPublished,
  };
}

export function siteToProto(row: SiteRow, connected: boolean): pb.Site {
  return {
    id: row.id,
    federationId: row.federationId,
    name: row.name,
    state: SITE_STATES[row.state],
    enrolledAt: row.enrolledAt,
    lastSeenAt: row.lastSeenAt ?? undefined,
    certificateFingerprint: row.certFingerprint,
    connected,
  };
}

export function roundToProto(row: RoundRow, participants: ParticipantRow[]): pb.Round {
  return {
    id: row.id,
    federationId: row.federationId,
    number: row.number,
    state: ROUND_STATES[row.state],
    modelVersion: BigInt(row.modelVersion ?? 0),
    participants: participants.map((p) => ({
      siteId: p.siteId,
      state: PARTICIPATION[p.state],
      sampleCount: BigInt(p.sampleCount),
      metrics: p.metrics,
      reason: p.reason ?? '',
    })),
    totalSamples: BigInt(row.totalSamples),
    openedAt: row.openedAt ?? undefined,
    deadline: row.deadlineAt ?? undefined,
    closedAt: row.closedAt ?? undefined,
    failureReason: row.failureReason ?? '',
    aggregateDigest: Buffer.from(row.aggregateDigest ?? '', 'hex'),
    resultModelVersion: BigInt(row.resultModelVersion ?? 0),
  };
}

export function trainTaskToProto(round: RoundRow, fed: FederationRow): pb.TrainTask {
  const spec = federationSpec(fed);
  const he = federationHe(fed);
  return {
    roundId: round.id,
    federationId: round.federationId,
    roundNumber: round.number,
    modelVersion: BigInt(round.modelVersion ?? 0),
    deadline: round.deadlineAt ?? undefined,
    modelSpec: modelSpecToProto(spec.modelSpec as ModelSpec),
    hePreset: hePresetToProto(he.preset),
    maxSamplesPerSite: fed.maxSamplesPerSite,
    maxSites: he.maxSites,
    maxAbsWeight: he.maxAbsWeight,
  };
}

/** A stored ledger entry on the wire: payload as its exact UTF-8 bytes, digests and signature raw. */
export function ledgerEntryToProto(row: LedgerEntryRow): pb.LedgerEntry {
  return {
    index: BigInt(row.index),
    kind: row.kind,
    payload: Buffer.from(row.payload, 'utf8'),
    previousDigest: Buffer.from(row.previousDigest, 'hex'),
    digest: Buffer.from(row.digest, 'hex'),
    coordinatorSignature: Buffer.from(row.signature, 'base64'),
    createdAt: row.createdAt,
  };
}

/** The coordinator's receipt for an accepted update, as returned to the site. */
export function receiptToProto(
  r: { roundId: string; siteId: string; updateDigest: Buffer; duplicate: boolean },
  issued: IssuedReceipt | undefined,
  fallbackAcceptedAt: Date,
): pb.Receipt {
  return {
    roundId: r.roundId,
    siteId: r.siteId,
    updateDigest: r.updateDigest,
    acceptedAt: issued?.acceptedAt ?? fallbackAcceptedAt,
    ledgerIndex: BigInt(issued?.ledgerIndex ?? 0),
    coordinatorSignature: Buffer.from(issued?.signature ?? '', 'base64'),
    duplicate: r.duplicate,
  };
}

/** Key work for a site, as a task-stream event. */
export function keyWorkToProto(work: KeyWork): pb.WatchTasksResponse {
  if (work.kind === 'available') {
    return { event: { $case: 'keyBundle', value: { federationId: work.federationId, keyId: work.keyId } } };
  }
  return {
    event: {
      $case: 'keyRequest',
      value: {
        federationId: work.federationId,
        generate: work.kind === 'generate',
        recipients: work.recipients.map((r) => ({ siteId: r.siteId, keyWrapPublicKey: r.keyWrapPublicKey })),
        hePreset: hePresetToProto(work.preset),
      },
    },
  };
}

/** A published key bundle from the wire (bytes copied out of the request's buffers). */
export function submittedBundleFromProto(b: pb.KeyBundle): SubmittedBundle {
  return {
    custodianSiteId: b.custodianSiteId,
    presetHash: Buffer.from(b.presetHash).toString('hex'),
    publicParameters: Uint8Array.from(b.publicParameters),
    custodianSignature: Uint8Array.from(b.custodianSignature),
    wrappedKeys: b.wrappedKeys.map((w) => ({
      siteId: w.siteId,
      ephemeralPublicKey: Uint8Array.from(w.ephemeralPublicKey),
      nonce: Uint8Array.from(w.nonce),
      ciphertext: Uint8Array.from(w.ciphertext),
      wrappedBySiteId: w.wrappedBySiteId,
      signature: Uint8Array.from(w.signature),
    })),
  };
}

/** The key bundle as one site reads it: public material and its own wrapped key only. */
export function keyBundleViewToProto(v: KeyBundleView): pb.GetKeyBundleResponse {
  const b64 = (s: string) => Buffer.from(s, 'base64');
  return {
    bundle: {
      federationId: v.bundle.federationId,
      custodianSiteId: v.bundle.custodianSiteId,
      presetHash: Buffer.from(v.bundle.presetHash, 'hex'),
      publicParameters: Buffer.from(v.publicParameters),
      wrappedKeys: [
        {
          siteId: v.wrapped.siteId,
          ephemeralPublicKey: b64(v.wrapped.ephemeralPublicKey),
          nonce: b64(v.wrapped.nonce),
          ciphertext: b64(v.wrapped.ciphertext),
          wrappedBySiteId: v.wrapped.wrappedBySiteId,
          signature: b64(v.wrapped.signature),
        },
      ],
      custodianSignature: b64(v.bundle.custodianSignature),
      keyId: v.bundle.publicParametersDigest,
    },
    signingPublicKeys: v.signingKeys,
  };
}
