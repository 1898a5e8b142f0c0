import type * as pb from '@radfed/proto';
import {
  canonicalJson,
  type SignedUpdateFacts,
  signedUpdateMessage,
  verifyUpdateSignature,
} from '@radfed/shared';
import { InvalidUpdateSignatureError, MissingUpdateSignatureError } from '../errors.js';
import type { SubmittedProvenance } from '../rounds/engine.js';
import type { SiteRow } from '../store/queries/sites.js';

/**
 * Checks what a site signed for an upload before a byte of it is accepted: the signed facts must be
 * exactly the header's (round, model version, digest, sample count, metrics), carry a 32-byte dataset
 * commitment, and verify against the Ed25519 key the site enrolled with.
 *
 * Security: this is what stops one site (or anyone holding only a TLS key) from submitting an update
 * the ledger would attribute to another site; the signature and facts go into the ledger as they are.
 *
 * @throws MissingUpdateSignatureError (INVALID_ARGUMENT) for an unsigned or inconsistent header.
 * @throws InvalidUpdateSignatureError (PERMISSION_DENIED) when the signature does not verify.
 */
export function checkUpdateSignature(site: SiteRow, header: pb.UpdateHeader): SubmittedProvenance {
  const signed = header.signed;
  if (!signed || signed.siteSignature.length === 0) {
    throw new MissingUpdateSignatureError(
      'The update is not signed; this coordinator records who submitted what and needs the site to sign (round, model version, update digest, dataset commitment, metrics, sample count). Upgrade the agent.',
    );
  }
  const mismatch = (field: string) =>
    new MissingUpdateSignatureError(
      `The signed ${field} differs from the upload header's; the agent must sign exactly what it uploads.`,
    );
  if (signed.roundId !== header.roundId) throw mismatch('round');
  if (signed.modelVersion !== header.modelVersion) throw mismatch('model version');
  if (!signed.updateDigest.equals(header.sha256)) throw mismatch('update digest');
  if (signed.sampleCount !== header.sampleCount) throw mismatch('sample count');
  if (canonicalJson(signed.metrics) !== canonicalJson(header.metrics)) throw mismatch('metrics');
  if (signed.datasetCommitment.length !== 32) {
    throw new MissingUpdateSignatureError(
      "The signed dataset commitment must be the 32-byte Merkle root of the site's training files.",
    );
  }
  const facts: SignedUpdateFacts = {
    roundId: signed.roundId,
    modelVersion: Number(signed.modelVersion),
    updateDigest: signed.updateDigest.toString('hex'),
    datasetCommitment: signed.datasetCommitment.toString('hex'),
    metrics: signed.metrics,
    sampleCount: Number(signed.sampleCount),
  };
  if (!verifyUpdateSignature(Buffer.from(site.signingPublicKey, 'base64'), facts, signed.siteSignature)) {
    throw new InvalidUpdateSignatureError();
  }
  return {
    datasetCommitment: facts.datasetCommitment,
    signedPayload: signedUpdateMessage(facts).toString('utf8'),
    siteSignature: signed.siteSignature.toString('base64'),
  };
}
