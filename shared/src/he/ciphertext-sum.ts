/**
 * The coordinator's HE operations: checking and adding ciphertexts under a federation's public
 * parameters. Security: this module and its worker are given public parameters only and expose no
 * way to make, take or use a secret key, so nothing reachable from here can decrypt an update.
 */
import { HeKeyError } from '../errors.js';
import { checkFrames, framedBytes } from './framing.js';
import { HePool } from './pool.js';
import { type HePreset, presetHash } from './presets.js';
import { decodePublicParameters, heKeyId } from './public-parameters.js';
import type { FoldJob } from './sum-worker.js';

const SUM_WORKER = new URL('./sum-worker.ts', import.meta.url);

/** Adds encrypted updates into running sums on a pool of worker threads (one SEAL instance each). */
export class CiphertextSum {
  private pool: HePool | undefined;
  private readonly expectedParameters = new Map<string, Promise<Uint8Array>>();

  /** @param threads worker threads to shard each fold over (default: cores available, at most 8). */
  constructor(private readonly threads?: number) {}

  /**
   * Checks that `update` is exactly an update of `parameterCount` values under `preset` and the key
   * `keyId`, in JavaScript, without touching any sum. Returns nothing; throws HeFormatError saying
   * what is wrong (another preset or key, wrong count, truncated or damaged bytes).
   */
  checkUpdate(preset: HePreset, keyId: string | undefined, update: Uint8Array, parameterCount: number): void {
    checkFrames(update, { preset, presetHash: presetHash(preset), kind: 'update', keyId, parameterCount });
  }

  /**
   * Returns `sum + update` as aggregate frames; `sum` undefined is the first update of a round. Call
   * {@link checkUpdate} first: SEAL trusts the layout. Inputs are never modified.
   */
  async fold(
    preset: HePreset,
    sum: Uint8Array | undefined,
    update: Uint8Array,
    parameterCount: number,
  ): Promise<Uint8Array> {
    const hash = presetHash(preset);
    // Layout only (cheap): coefficients were scanned by checkUpdate, and the sum is our own output.
    const quick = { preset, presetHash: hash, parameterCount, scanCoefficients: false };
    const keyId = checkFrames(update, { ...quick, kind: 'update', keyId: undefined });
    if (sum) checkFrames(sum, { ...quick, kind: 'aggregate', keyId });
    const count = Math.ceil(parameterCount / preset.slotsPerCiphertext);
    // Shared memory: every worker reads its shard and writes its part of the result in place.
    const sumBytes = sum?.byteLength ?? 0;
    const input = new SharedArrayBuffer(sumBytes + update.byteLength);
    const view = new Uint8Array(input);
    if (sum) view.set(sum, 0);
    view.set(update, sumBytes);
    const output = new SharedArrayBuffer(framedBytes(preset, 'aggregate', parameterCount));
    const pool = this.workers();
    await pool.map(count, (from, to) =>
      pool.run<number>({
        op: 'fold',
        preset,
        presetHash: hash,
        keyId,
        parameterCount,
        input,
        sumOffset: sum ? 0 : -1,
        updateOffset: sumBytes,
        output,
        from,
        to,
      } satisfies FoldJob),
    );
    return new Uint8Array(output);
  }

  /**
   * Checks published public parameters: they must be for `preset` and carry exactly the preset's SEAL
   * parameters. Returns the key id they define.
   * @throws HeKeyError saying what does not match.
   */
  async checkPublicParameters(preset: HePreset, bytes: Uint8Array): Promise<string> {
    const p = decodePublicParameters(bytes);
    if (p.presetHash !== presetHash(preset)) {
      throw new HeKeyError(`The public parameters are for another HE preset than ${preset.name}.`);
    }
    let expected = this.expectedParameters.get(preset.name);
    if (!expected) {
      expected = this.workers().run<Uint8Array>({ op: 'sealParameters', preset });
      this.expectedParameters.set(preset.name, expected);
    }
    if (!Buffer.from(await expected).equals(p.sealParameters)) {
      throw new HeKeyError(`The public parameters' SEAL parameters are not those of ${preset.name}.`);
    }
    if (preset.encryption === 'secret-key' && p.publicKey.byteLength !== 0) {
      throw new HeKeyError(
        `${preset.name} encrypts with the secret key; its public parameters carry no public key.`,
      );
    }
    return heKeyId(bytes);
  }

  /** Stops the worker threads. */
  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
  }

  private workers(): HePool {
    this.pool ??= new HePool(SUM_WORKER, this.threads);
    return this.pool;
  }
}
