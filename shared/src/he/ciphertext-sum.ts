/**
 * The coordinator's HE operations: checking and adding ciphertexts under a federation's public
 * parameters. Security: this module and its worker are given public parameters only and expose no
 * way to make, take or use a secret key, so nothing reachable from here can decrypt an update.
 * Adding is plain JavaScript (fold.ts) on worker threads; SEAL is loaded only to check published
 * public parameters and for the benchmark's calibration.
 */
import { HeFormatError, HeKeyError } from '../errors.js';
import {
  aggregateBytes,
  aggregateContributors,
  aggregateFrameBytes,
  checkFrames,
  updateFrameBytes,
} from './framing.js';
import { HePool } from './pool.js';
import { type HePreset, presetHash } from './presets.js';
import { decodePublicParameters, heKeyId } from './public-parameters.js';
import type { FoldJob } from './sum-worker.js';

const SUM_WORKER = new URL('./sum-worker.ts', import.meta.url);
/** Ciphertexts per job: ~2 MB in flight per job and update at N = 8192. */
const CHUNK_CIPHERTEXTS = 16;

/** Adds encrypted updates into running sums on a pool of worker threads. */
export class CiphertextSum {
  private pool: HePool | undefined;
  private readonly expectedParameters = new Map<string, Promise<Uint8Array>>();
  /** Chunk buffers back from the workers, reused (a few per thread). */
  private spare: ArrayBuffer[] = [];

  /** @param threads worker threads to shard each fold over (default: cores available, at most 8). */
  constructor(private readonly threads?: number) {}

  /**
   * Checks that `update` is exactly an update of `parameterCount` values under `preset` and the key
   * `keyId`, in JavaScript, without touching any sum: every header, length and fixed SEAL field, and,
   * with `scanCoefficients`, that every coefficient is reduced. The fold checks coefficients as it adds
   * them, so the upload path leaves the scan to it. Returns nothing; throws HeFormatError saying what
   * is wrong (another preset or key, wrong count, truncated or damaged bytes).
   */
  checkUpdate(
    preset: HePreset,
    keyId: string | undefined,
    update: Uint8Array,
    parameterCount: number,
    scanCoefficients = false,
  ): void {
    checkFrames(update, {
      preset,
      presetHash: presetHash(preset),
      kind: 'update',
      keyId,
      parameterCount,
      scanCoefficients,
    });
  }

  /**
   * Returns `sum + update` as aggregate frames; `sum` undefined is the first update of a round. Inputs
   * are never modified, so a refused update leaves the sum as it was.
   * @throws HeFormatError for bytes that are not an update under this preset and the sum's key, an
   *   unreduced coefficient (`corrupt`), or an update already in the sum (`duplicate`).
   */
  fold(
    preset: HePreset,
    sum: Uint8Array | undefined,
    update: Uint8Array,
    parameterCount: number,
  ): Promise<Uint8Array> {
    return this.foldMany(preset, sum, [update], parameterCount);
  }

  /**
   * Returns `sum + updates[0] + updates[1] + ...`, adding into one running sum per ciphertext and
   * serialising it once (recomputing a round, or folding a batch). Same checks and guarantees as
   * {@link fold}.
   */
  async foldMany(
    preset: HePreset,
    sum: Uint8Array | undefined,
    updates: Uint8Array[],
    parameterCount: number,
  ): Promise<Uint8Array> {
    const hash = presetHash(preset);
    // Layout only (cheap): the fold checks every coefficient as it adds it.
    const quick = { preset, presetHash: hash, parameterCount, scanCoefficients: false };
    if (updates.length === 0) throw new HeFormatError('count', 'There is no update to fold.');
    const keyId = checkFrames(updates[0]!, { ...quick, kind: 'update', keyId: undefined });
    for (const u of updates.slice(1)) checkFrames(u, { ...quick, kind: 'update', keyId });
    if (sum) checkFrames(sum, { ...quick, kind: 'aggregate', keyId });
    const sumContributors = sum ? aggregateContributors(sum) : 0;
    const count = Math.ceil(parameterCount / preset.slotsPerCiphertext);
    const update = updateFrameBytes(preset);
    const aggregate = aggregateFrameBytes(preset, sumContributors);
    const contributors = sumContributors + updates.length;
    const outFrame = aggregateFrameBytes(preset, contributors);
    const output = new Uint8Array(aggregateBytes(preset, parameterCount, contributors));
    const pool = this.workers();
    // Bounded chunks, each copied into a buffer moved to a worker and back, and kept for the next
    // chunk: memory in transit stays small, and no fold leaves buffers for a garbage collector.
    await pool.chunks(count, CHUNK_CIPHERTEXTS, async (from, to) => {
      const span = to - from;
      const inputBytes = (sum ? span * aggregate : 0) + updates.length * span * update;
      const input = new Uint8Array(this.buffer(inputBytes), 0, inputBytes);
      let at = 0;
      if (sum) {
        input.set(sum.subarray(from * aggregate, to * aggregate), 0);
        at = span * aggregate;
      }
      for (const u of updates) {
        input.set(u.subarray(from * update, to * update), at);
        at += span * update;
      }
      const job: FoldJob = {
        op: 'fold',
        preset,
        presetHash: hash,
        keyId,
        parameterCount,
        input: input.buffer as ArrayBuffer,
        inputBytes,
        sumContributors,
        updates: updates.length,
        output: this.buffer(span * outFrame),
        from,
        to,
      };
      try {
        const out = await pool.run<{ output: ArrayBuffer; input: ArrayBuffer }>(job, [job.input, job.output]);
        output.set(new Uint8Array(out.output, 0, span * outFrame), from * outFrame);
        this.spare.push(out.input, out.output);
      } finally {
        this.spare.splice(4 * pool.size);
      }
    });
    return output;
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
      const job = { op: 'sealParameters', preset };
      expected = this.workers().run<Uint8Array>(job);
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

  /**
   * Calibration for benchmarks: parameters per second one worker thread's SEAL instance loads (so
   * expands the seeds of) and adds the (checked) update's ciphertexts, with none of the framing,
   * copying or serialising around it: what folding would cost if the coordinator expanded seeds.
   */
  async sealFoldRate(
    preset: HePreset,
    update: Uint8Array,
    parameterCount: number,
    repeats = 3,
  ): Promise<number> {
    const count = Math.ceil(parameterCount / preset.slotsPerCiphertext);
    const input = Uint8Array.prototype.slice.call(update).buffer; // a copy, even of a Buffer
    const job = { op: 'sealCost', preset, input, count, repeats };
    const seconds = await this.workers().run<number>(job, [job.input]);
    return (count * preset.slotsPerCiphertext * repeats) / seconds;
  }

  /** Stops the worker threads. */
  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
  }

  /** A buffer of at least `bytes` for a chunk in transit: a spare one, or a new one. */
  private buffer(bytes: number): ArrayBuffer {
    const i = this.spare.findIndex((b) => b.byteLength >= bytes);
    return i >= 0 ? this.spare.splice(i, 1)[0]! : new ArrayBuffer(bytes);
  }

  private workers(): HePool {
    this.pool ??= new HePool(SUM_WORKER, this.threads);
    return this.pool;
  }
}
