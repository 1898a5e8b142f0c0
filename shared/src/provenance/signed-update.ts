import { canonicalJson } from '../canonical/canonical.js';
import { sign, verify } from '../keys/signing.js';

/**
 * What a site signs when it submits an update: enough to pin the update to one round, one model
 * version, one dataset and one set of reported numbers. The coordinator records these facts and the
 * signature in its ledger, so an auditor can check them with nothing but the site's public key.
 */
export interface SignedUpdateFacts {
  roundId: string;
  /** The global model version the update was trained from. */
  modelVersion: number;
  /** Lower-case hex SHA-256 of the update bytes as uploaded (ciphertext for HE presets). */
  updateDigest: string;
  /** Lower-case hex Merkle root over the site's training files (the agent's IngestReport.commitment). */
  datasetCommitment: string;
  /** The metrics the site chose to report, as uploaded. */
  metrics: Record<string, number>;
  sampleCount: number;
}

/** Domain tag: a signature over one kind of record never verifies as another. */
export const SIGNED_UPDATE_DOMAIN = 'radfed.signed-update.v1';

/** The exact bytes a site signs for an update: the canonical JSON of the facts with a domain tag. */
export function signedUpdateMessage(facts: SignedUpdateFacts): Buffer {
  return Buffer.from(
    canonicalJson({
      domain: SIGNED_UPDATE_DOMAIN,
      roundId: facts.roundId,
      modelVersion: facts.modelVersion,
      updateDigest: facts.updateDigest.toLowerCase(),
      datasetCommitment: facts.datasetCommitment.toLowerCase(),
      metrics: facts.metrics,
      sampleCount: facts.sampleCount,
    }),
    'utf8',
  );
}

/** Signs the facts of an update with the site's Ed25519 key (PKCS#8 PEM); returns the 64-byte signature. */
export function signUpdate(signingKeyPem: string, facts: SignedUpdateFacts): Buffer {
  return sign(signingKeyPem, signedUpdateMessage(facts));
}

/** True when `signature` is the site's (raw 32-byte Ed25519 key) over exactly these facts. */
export function verifyUpdateSignature(
  signingPublicKey: Uint8Array,
  facts: SignedUpdateFacts,
  signature: Uint8Array,
): boolean {
  return verify(signingPublicKey, signedUpdateMessage(facts), signature);
}
