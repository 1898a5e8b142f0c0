/**
 * The one translation layer between generated radfed.v1 types and the coordinator's domain rows.
 * Nothing outside transport/ imports generated types.
 */

import * as pb from '@radfed/proto';
import type { ModelSpec } from '@radfed/shared';
import { federationSpec } from '../federations/service.js';
import type { ParticipationState, RoundState, SiteState } from '../rounds/states.js';
import type { FederationRow } from '../store/queries/federations.js';
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

/** Proto and domain model specs carry the same fields; this copies either into a fresh object. */
function copyModelSpec(spec: ModelSpec | pb.ModelSpec): ModelSpec & pb.ModelSpec {
  return {
    architecture: spec.architecture,
    inputSize: spec.inputSize,
    tensors: spec.tensors.map((t) => ({ name: t.name, shape: [...t.shape], shared: t.shared })),
    objective: spec.objective,
    seed: spec.seed,
    localEpochs: spec.localEpochs,
    batchSize: spec.batchSize,
    learningRate: spec.learningRate,
    fedproxMu: spec.fedproxMu,
  };
}

export function modelSpecToProto(spec: ModelSpec): pb.ModelSpec {
  return copyModelSpec(spec);
}

/** Proto model spec to the plain object the federation spec schema validates (undefined if absent). */
export function modelSpecFromProto(spec: pb.ModelSpec | undefined): ModelSpec | undefined {
  return spec ? copyModelSpec(spec) : undefined;
}

export function hePresetToProto(name: string): pb.HePreset {
  return {
    name,
    scheme: name === 'plaintext' ? 'plaintext' : name,
    polyModulusDegree: 0,
    coeffModulusBits: [],
    plainModulus: 0n,
    scale: 0,
    presetHash: Buffer.alloc(0),
  };
}

export function federationToProto(row: FederationRow): pb.Federation {
  const spec = federationSpec(row);
  return {
    id: row.id,
    name: row.name,
    modelSpec: modelSpecToProto(spec.modelSpec as ModelSpec),
    hePreset: hePresetToProto(spec.hePreset),
    minSites: row.minSites,
    roundDeadlineSeconds: row.roundDeadlineSeconds,
    maxSamplesPerSite: row.maxSamplesPerSite,
    specHash: Buffer.from(row.specHash, 'hex'),
    createdAt: row.createdAt,
    currentModelVersion: BigInt(row.currentModelVersion),
    parameterCount: row.parameterCount,
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
  return {
    roundId: round.id,
    federationId: round.federationId,
    roundNumber: round.number,
    modelVersion: BigInt(round.modelVersion ?? 0),
    deadline: round.deadlineAt ?? undefined,
    modelSpec: modelSpecToProto(spec.modelSpec as ModelSpec),
    hePreset: hePresetToProto(spec.hePreset),
    maxSamplesPerSite: fed.maxSamplesPerSite,
  };
}
