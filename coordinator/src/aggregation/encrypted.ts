import {
  type CiphertextSum,
  HeFormatError,
  type HePreset,
  presetHash,
  readFrameHeader,
  updateBytes,
} from '@radfed/shared';
import { HeKeysMissingError, InvalidUpdateError, WrongHeKeyError } from '../errors.js';
import type { Aggregator, ByteSource } from './aggregator.js';

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
   * @param heKeyId the federation's HE key id, or undefined before its key bundle is published (then
   *   every update is refused).
   * @param custodian how to name the key custodian in that refusal.
   */
  constructor(
    private readonly preset: HePreset,
    private readonly heKeyId: string | undefined,
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
   * sum. Coefficients are checked by the fold as it adds them (one pass, not two).
   */
  validate(update: Uint8Array, parameterCount: number): void {
    this.refusals(() => this.sums.checkUpdate(this.preset, this.keyId(), update, parameterCount));
  }

  /**
   * sum + update, ciphertext by ciphertext, on the HE worker threads: modular additions of c0 and the
   * update's seeds merged into the sum's (see `foldRange` in @radfed/shared). A damaged coefficient
   * or an update already in the sum is refused with the sum untouched.
   */
  async fold(sum: Uint8Array | undefined, update: Uint8Array): Promise<Uint8Array> {
    const parameterCount = framedParameterCount(this.preset, update);
    return this.refusals(() => this.sums.fold(this.preset, sum, update, parameterCount));
  }

  /** As {@link fold}, streamed (see Aggregator.foldStream); the update's frames are checked per chunk. */
  foldStream(
    sum: ByteSource | undefined,
    update: ByteSource,
    parameterCount: number,
    write: (chunk: Uint8Array) => Promise<void>,
  ): Promise<void> {
    const keyId = this.keyId();
    return this.refusals(() => this.sums.foldStream(this.preset, keyId, sum, update, parameterCount, write));
  }

  /** The federation's key id. @throws HeKeysMissingError before the key bundle is published. */
  private keyId(): string {
    if (!this.heKeyId) throw new HeKeysMissingError(this.custodian);
    return this.heKeyId;
  }

  /** Runs `f`, turning HE format errors into the refusals sites see (wrong key, invalid update). */
  private refusals<T>(f: () => T): T {
    const map = (err: unknown): never => {
      if (!(err instanceof HeFormatError)) throw err;
      if (err.reason === 'key') throw new WrongHeKeyError(err.message, { cause: err });
      throw new InvalidUpdateError(err.message, { cause: err });
    };
    try {
      const out = f();
      return (out instanceof Promise ? out.catch(map) : out) as T;
    } catch (err) {
      return map(err);
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
