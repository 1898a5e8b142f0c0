/**
 * The agent's one translation layer between generated proto types and its domain types, as the
 * coordinator's `transport/convert.ts`. Only `transport/` imports wire types; tasks, HE and
 * provenance work with what this module returns (numbers, not bigints; hex strings for digests the
 * ledger records as hex; no `undefined` messages standing for "absent").
 */
import type * as pb from '@radfed/proto';
import { modelSpecFromWire } from '@radfed/proto';

/** One round's training task, as the coordinator pushes it down the task stream. */
export interface TrainingTask {
  roundId: string;
  federationId: string;
  roundNumber: number;
  modelVersion: number;
  deadline: Date | undefined;
  /** The model spec in domain form, not yet validated (the task runner checks it and may decline). */
  modelSpec: Record<string, unknown> | undefined;
  /** The federation's HE preset by name and hex hash; name `plaintext` when the task names none. */
  hePreset: { name: string; presetHash: string };
  /** Federation limits; 0 when the coordinator sent none. */
  maxSamplesPerSite: number;
  maxSites: number;
  maxAbsWeight: number;
}

export function trainingTaskFromProto(t: pb.TrainTask): TrainingTask {
  return {
    roundId: t.roundId,
    federationId: t.federationId,
    roundNumber: t.roundNumber,
    modelVersion: Number(t.modelVersion),
    deadline: t.deadline,
    modelSpec: modelSpecFromWire(t.modelSpec),
    hePreset: hePresetFromProto(t.hePreset),
    maxSamplesPerSite: t.maxSamplesPerSite,
    maxSites: t.maxSites,
    maxAbsWeight: t.maxAbsWeight,
  };
}

function hePresetFromProto(p: pb.HePreset | undefined): { name: string; presetHash: string } {
  return { name: p?.name || 'plaintext', presetHash: Buffer.from(p?.presetHash ?? []).toString('hex') };
}

/** The coordinator's signed acknowledgement of an accepted update. */
export interface UpdateReceipt {
  roundId: string;
  siteId: string;
  /** SHA-256 of the update as the coordinator holds it. */
  updateDigest: Buffer;
  acceptedAt: Date;
  /** Index of the ledger's `update.accepted` entry for it. */
  ledgerIndex: number;
  /** Ed25519 over the receipt facts, 64 bytes. */
  coordinatorSignature: Buffer;
  /** True when the coordinator already held this update (a re-send, or a receipt fetched again). */
  duplicate: boolean;
}

export function receiptFromProto(r: pb.Receipt): UpdateReceipt {
  return {
    roundId: r.roundId,
    siteId: r.siteId,
    updateDigest: r.updateDigest,
    acceptedAt: r.acceptedAt ?? new Date(0),
    ledgerIndex: Number(r.ledgerIndex),
    coordinatorSignature: r.coordinatorSignature,
    duplicate: r.duplicate,
  };
}

/** What a downloaded model version says about itself. */
export interface ModelInfo {
  modelVersion: number;
  totalBytes: number;
  sha256: Buffer;
  /** Sum of n_i over the sites aggregated into this version; 0 for the seeded version 0. */
  totalSamples: number;
  parameterCount: number;
  encoding: string;
  siteCount: number;
}

export function modelInfoFromProto(h: pb.ModelHeader): ModelInfo {
  return {
    modelVersion: Number(h.modelVersion),
    totalBytes: Number(h.totalBytes),
    sha256: h.sha256,
    totalSamples: Number(h.totalSamples),
    parameterCount: h.parameterCount,
    encoding: h.encoding,
    siteCount: h.siteCount,
  };
}

/** Key work the coordinator asks of a key-holding site: generate the HE keys, or wrap them. */
export interface KeyWorkRequest {
  federationId: string;
  generate: boolean;
  recipients: { siteId: string; keyWrapPublicKey: Buffer }[];
  /** The preset to generate or wrap for, by name and hex hash. */
  hePreset: { name: string; presetHash: string };
}

/** Key work pushed down the task stream. */
export type KeyEvent =
  | { kind: 'request'; request: KeyWorkRequest }
  | { kind: 'available'; available: { federationId: string; keyId: string } };

export function keyEventFromProto(
  event: { $case: 'keyRequest'; value: pb.KeyRequest } | { $case: 'keyBundle'; value: pb.KeyBundleAvailable },
): KeyEvent {
  if (event.$case === 'keyBundle') {
    return {
      kind: 'available',
      available: { federationId: event.value.federationId, keyId: event.value.keyId },
    };
  }
  const r = event.value;
  return {
    kind: 'request',
    request: {
      federationId: r.federationId,
      generate: r.generate,
      recipients: r.recipients.map((x) => ({ siteId: x.siteId, keyWrapPublicKey: x.keyWrapPublicKey })),
      hePreset: {
        name: r.hePreset?.name ?? '',
        presetHash: Buffer.from(r.hePreset?.presetHash ?? []).toString('hex'),
      },
    },
  };
}

/** The HE secret key wrapped for one site. */
export interface WrappedKeyFor {
  siteId: string;
  ephemeralPublicKey: Buffer;
  nonce: Buffer;
  ciphertext: Buffer;
  wrappedBySiteId: string;
  signature: Buffer;
}

/** A federation's HE key bundle: public parameters and wrapped secret keys, never a bare key. */
export interface HeKeyBundle {
  federationId: string;
  custodianSiteId: string;
  /** Hex hash of the HE preset the keys are for. */
  presetHash: string;
  publicParameters: Buffer;
  wrappedKeys: WrappedKeyFor[];
  custodianSignature: Buffer;
  keyId: string;
}

export function keyBundleToProto(b: HeKeyBundle): pb.KeyBundle {
  return {
    ...b,
    presetHash: Buffer.from(b.presetHash, 'hex'),
    wrappedKeys: b.wrappedKeys.map((w) => ({ ...w })),
  };
}

/** The bundle as a site may read it (its own wrapped key only), with the signers' public keys. */
export interface KeyBundleView {
  bundle: HeKeyBundle | undefined;
  /** Raw Ed25519 public keys of the custodian and of the site that wrapped the caller's key, by site id. */
  signingPublicKeys: Record<string, Buffer>;
}

export function keyBundleViewFromProto(res: pb.GetKeyBundleResponse): KeyBundleView {
  const b = res.bundle;
  return {
    bundle: b && {
      federationId: b.federationId,
      custodianSiteId: b.custodianSiteId,
      presetHash: Buffer.from(b.presetHash).toString('hex'),
      publicParameters: b.publicParameters,
      wrappedKeys: b.wrappedKeys.map((w) => ({ ...w })),
      custodianSignature: b.custodianSignature,
      keyId: b.keyId,
    },
    signingPublicKeys: res.signingPublicKeys,
  };
}
