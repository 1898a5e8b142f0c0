import {
  type CiphertextSum,
  HeFormatError,
  type HePreset,
  presetHash,
  readFrameHeader,
  updateBytes,
} from '@radfed/shared';
import { HeKeysMissingError, InvalidUpdateError, WrongHeKeyError } from '../errors.js';
import type { Aggregator } from './aggregator.js';

/** The update encoding sites name in their upload header for an HE preset. */
export function encryptedEncoding(preset: HePreset): string {
  return `he-${preset.name}`;
}

/**
 * Encrypted weighted FedAvg: sites upload `Enc(quantise(n_i * w_i))` as framed ciphertexts, and the
 * coordinator adds ciphertexts (exact modular additions), never seeing a weight. Security: it holds
 * the federation's public parameters only (through its key id); no key here decrypts anything.
 */
export class EncryptedAggregator implements Aggregator {
  readonly encoding: string;

  /**
   * @param keyId the federation's HE key id, or undefined before its key bundle is published (then
   *   every update is refused).
   * @param custodian how to name the key custodian in that refusal.
   */
  constructor(
    private readonly preset: HePreset,
    private readonly keyId: string | undefined,
    private readonly sums: CiphertextSum,
    private readonly custodian = 'the key custodian',
  ) {
    this.encoding = encryptedEncoding(preset);
  }

  updateBytes(parameterCount: number): number {
    return updateBytes(this.preset, parameterCount);
  }

  /**
   * Checks framing, preset, key, ciphertext count and every fixed SEAL field in JavaScript; touches no
   * sum. Coefficients are checked by {@link fold} as it adds them (one pass, not two).
   */
  validate(update: Uint8Array, parameterCount: number): void {
    if (!this.keyId) throw new HeKeysMissingError(this.custodian);
    try {
      this.sums.checkUpdate(this.preset, this.keyId, update, parameterCount);
    } catch (err) {
      if (!(err instanceof HeFormatError)) throw err;
      if (err.reason === 'key') throw new WrongHeKeyError(err.message, { cause: err });
      throw new InvalidUpdateError(err.message, { cause: err });
    }
  }

  /**
   * sum + update, ciphertext by ciphertext, on the HE worker threads: modular additions of c0 and the
   * update's seeds merged into the sum's (see `foldRange` in @radfed/shared). A damaged coefficient
   * or an update already in the sum is refused with the sum untouched.
   */
  async fold(sum: Uint8Array | undefined, update: Uint8Array): Promise<Uint8Array> {
    const parameterCount = framedParameterCount(this.preset, update);
    try {
      return await this.sums.fold(this.preset, sum, update, parameterCount);
    } catch (err) {
      if (err instanceof HeFormatError) throw new InvalidUpdateError(err.message, { cause: err });
      throw err;
    }
  }
}

/** The parameter count an update's frames declare (all ciphertexts full but the last). */
function framedParameterCount(preset: HePreset, update: Uint8Array): number {
  try {
    const first = readFrameHeader(update, 0);
    if (first.presetHash !== presetHash(preset))
      throw new InvalidUpdateError('The update is under another HE preset.');
    const frame = update.byteLength / Math.max(1, first.count);
    const last = readFrameHeader(update, (first.count - 1) * frame);
    return (first.count - 1) * preset.slotsPerCiphertext + last.slots;
  } catch (err) {
    if (err instanceof HeFormatError) throw new InvalidUpdateError(err.message, { cause: err });
    throw err;
  }
}
