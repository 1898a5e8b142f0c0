import { hePreset, presetHash } from '@radfed/shared';
import { updateEncoding } from '../aggregation/registry.js';

/**
 * The hash of an HE preset that the ledger pins: the preset registry's own hash over every parameter
 * that fixes what a ciphertext means (scheme, degree, primes, plain modulus, scale), the same hash
 * each ciphertext frame carries.
 *
 * @throws when `preset` names no preset this build knows.
 */
export function hePresetHash(preset: string): string {
  return presetHash(hePreset(preset));
}

/** The update encoding a preset's federation takes, as the ledger pins it at creation. */
export function ledgerUpdateEncoding(preset: string): string {
  return updateEncoding(hePreset(preset));
}
