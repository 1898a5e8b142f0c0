import { CiphertextSum, hePreset, isEncrypted, isHePresetName } from '@radfed/shared';
import type { Aggregator } from '../aggregation/aggregator.js';
import { EncryptedAggregator } from '../aggregation/encrypted.js';
import { PlaintextAggregator } from '../aggregation/plaintext.js';
import { updateEncoding } from '../aggregation/registry.js';
import { UnsupportedEncodingError } from '../errors.js';
import type { FederationCreatedPayload } from '../ledger/kinds.js';

/** An aggregator for an audit, with whatever it holds (HE worker threads) to release afterwards. */
export interface AuditAggregator {
  aggregator: Aggregator;
  /**
   * sum + updates[0] + updates[1] + ..., in that order (float64 sums are bit-exact only in ledger
   * order); for ciphertexts in one pass that serialises the sum once, not once per update.
   */
  foldMany(sum: Uint8Array | undefined, updates: Uint8Array[], parameterCount: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/**
 * The aggregator an auditor recomputes a federation's aggregates with: the same `fold` the
 * coordinator ran, chosen from what the ledger pins (the `federation.created` entry's HE preset and
 * update encoding, the `key_bundle.published` entry's key id), never from anything the export claims
 * on the side. Folding needs no secret key: plaintext folds are float64 additions, bit-exact when
 * repeated in ledger order; ciphertext folds are exact modular additions under public parameters.
 *
 * This is the single place the coordinator's aggregator registry is consulted for audits.
 *
 * @param keyId the federation's HE key id (SHA-256 of its public parameters), for HE presets.
 * @throws UnsupportedEncodingError when this build cannot recompute that preset's aggregates.
 */
export function aggregatorForAudit(
  created: Pick<FederationCreatedPayload, 'hePreset' | 'updateEncoding'>,
  keyId: string | undefined,
): AuditAggregator {
  if (!isHePresetName(created.hePreset)) {
    throw new UnsupportedEncodingError(
      `this build does not know HE preset "${created.hePreset}"; use a radfed version that supports it`,
    );
  }
  const preset = hePreset(created.hePreset);
  if (updateEncoding(preset) !== created.updateEncoding) {
    throw new UnsupportedEncodingError(
      `the ledger pins encoding "${created.updateEncoding}" for preset "${created.hePreset}", but this build folds that preset as "${updateEncoding(preset)}"`,
    );
  }
  if (!isEncrypted(preset)) {
    const aggregator = new PlaintextAggregator();
    return {
      aggregator,
      foldMany: async (sum, updates) =>
        updates.reduce<Uint8Array | undefined>((s, u) => aggregator.fold(s, u), sum)!,
      close: async () => {},
    };
  }
  if (!keyId) {
    throw new UnsupportedEncodingError(
      'the ledger records no published HE key bundle, so no key id pins what its ciphertexts are under',
    );
  }
  const sums = new CiphertextSum();
  return {
    aggregator: new EncryptedAggregator(preset, keyId, sums),
    foldMany: (sum, updates, parameterCount) => sums.foldMany(preset, sum, updates, parameterCount),
    close: () => sums.close(),
  };
}
