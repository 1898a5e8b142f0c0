/**
 * The coordinator's HE operations: checking and adding ciphertexts under a federation's public
 * parameters. Security: this module and its worker are given public parameters only and expose no
 * way to make, take or use a secret key, so nothing reachable from here can decrypt an update.
 * Adding is plain JavaScript (fold.ts) on worker threads; SEAL is loaded only to check published
 * public parameters.
 */
import { HeFormatError, HeKeyError } from '../errors.js';
import {
  aggregateContributors,
  aggregateFrameBytes,
  checkFrames,
  FRAME_HEADER_BYTES,
  updateFrameBytes,
} from './framing.js';
import { HePool } from './pool.js';
import { type HePreset, presetHash } from './presets.js';
import { decodePublicParameters, heKeyId } from './public-parameters.js';
import type { FoldJob } from './sum-worker.js';

const SUM_WORKER = new URL('./sum-worker.ts', import.meta.url);
/** Ciphertexts per job: ~2 MB in flight per job and update at N = 8192. */
const CHUNK_CIPHERTEXTS = 16;

/** A vector's bytes held elsewhere (a file, a blob): its length, and reads at an offset. */
export interface ByteSource {
  bytes: number;
  /** Fills `into` with the bytes from `offset`; throws if there are fewer. */
  readAt(offset: number, into: Uint8Array): Promise<void>;
}

/** A promise settled from outside (Promise.withResolvers is Node 22+); never an unhandled rejection. */
function deferred(): { promise: Promise<void>; resolve(): void; reject(err: unknown): void } {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** Frame sizes of one fold: `updates` updates into a sum of `sumContributors` (0: no sum). */
interface FoldShape {
  presetHash: string;
  parameterCount: number;
  count: number;
  sumContributors: number;
  updates: number;
  sumFrame: number;
  updateFrame: number;
  outFrame: number;
}

function foldShape(
  preset: HePreset,
  parameterCount: number,
  sumContributors: number,
  updates: number,
): FoldShape {
  return {
    presetHash: presetHash(preset),
    parameterCount,
    count: Math.ceil(parameterCount / preset.slotsPerCiphertext),
    sumContributors,
    updates,
    sumFrame: sumContributors > 0 ? aggregateFrameBytes(preset, sumContributors) : 0,
    updateFrame: updateFrameBytes(preset),
    outFrame: aggregateFrameBytes(preset, sumContributors + updates),
  };
}

/** Adds encrypted updates into running sums on a pool of worker threads. */
export class CiphertextSum {
  private pool: HePool | undefined;
  private readonly expectedParameters = new Map<string, Promise<Uint8Array>>();
  /**
   * Chunk buffers back from the workers, reused: as many as were ever in transit at once (at least a
   * few per thread), so that folds run side by side reuse buffers rather than allocate and drop them.
   */
  private spare: ArrayBuffer[] = [];
  private inTransit = 0;
  private mostInTransit = 0;

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
    const shape = foldShape(preset, parameterCount, sum ? aggregateContributors(sum) : 0, updates.length);
    const output = new Uint8Array(shape.count * shape.outFrame);
    await this.workers().chunks(shape.count, CHUNK_CIPHERTEXTS, (from, to) =>
      this.foldChunk(
        preset,
        keyId,
        shape,
        from,
        to,
        async (into, at) => {
          if (sum) {
            into.set(sum.subarray(from * shape.sumFrame, to * shape.sumFrame), at);
            at += (to - from) * shape.sumFrame;
          }
          for (const u of updates) {
            into.set(u.subarray(from * shape.updateFrame, to * shape.updateFrame), at);
            at += (to - from) * shape.updateFrame;
          }
        },
        async (out) => output.set(out, from * shape.outFrame),
      ),
    );
    return output;
  }

  /**
   * `sum + update` with neither held whole: both are read in chunks of ciphertexts (into buffers
   * reused from chunk to chunk), each chunk's frames are checked (layout here, coefficients in the
   * fold) against `preset`, `keyId` and `parameterCount`, and the new sum is handed to `write` chunk
   * by chunk, in order. Memory is a few chunks whatever the model size. When this throws, some chunks
   * may have been written: the caller discards what `write` received (e.g. an uncommitted file).
   * @throws HeFormatError as {@link fold}, for the first chunk found wrong.
   */
  async foldStream(
    preset: HePreset,
    keyId: string,
    sum: ByteSource | undefined,
    update: ByteSource,
    parameterCount: number,
    write: (chunk: Uint8Array) => Promise<void>,
  ): Promise<void> {
    let sumContributors = 0;
    if (sum) {
      const head = new Uint8Array(FRAME_HEADER_BYTES + 8);
      await sum.readAt(0, head);
      sumContributors = aggregateContributors(head);
    }
    const shape = foldShape(preset, parameterCount, sumContributors, 1);
    const expect = { preset, presetHash: shape.presetHash, parameterCount, scanCoefficients: false, keyId };
    if (update.bytes !== shape.count * shape.updateFrame) {
      // Refused from its first frame, which says what it is (another preset, key, count, or short).
      const head = new Uint8Array(Math.min(update.bytes, shape.updateFrame));
      await update.readAt(0, head);
      checkFrames(head, { ...expect, kind: 'update', range: { firstIndex: 0, totalBytes: update.bytes } });
    }
    if (sum && sum.bytes !== shape.count * shape.sumFrame) {
      throw new HeFormatError('corrupt', 'The stored running sum has the wrong length; it is damaged.');
    }
    // Chunks are computed out of order on the workers but written in order: chunk i waits for i-1.
    const turns = Array.from({ length: Math.ceil(shape.count / CHUNK_CIPHERTEXTS) }, () => deferred());
    await this.workers().chunks(shape.count, CHUNK_CIPHERTEXTS, async (from, to) => {
      const i = from / CHUNK_CIPHERTEXTS;
      try {
        await this.foldChunk(
          preset,
          keyId,
          shape,
          from,
          to,
          async (into, at) => {
            const range = (bytes: number) => ({ firstIndex: from, totalBytes: bytes });
            if (sum) {
              const part = into.subarray(at, at + (to - from) * shape.sumFrame);
              await sum.readAt(from * shape.sumFrame, part);
              checkFrames(part, { ...expect, kind: 'aggregate', range: range(sum.bytes) });
              at += part.byteLength;
            }
            const part = into.subarray(at, at + (to - from) * shape.updateFrame);
            await update.readAt(from * shape.updateFrame, part);
            checkFrames(part, { ...expect, kind: 'update', range: range(update.bytes) });
          },
          async (out) => {
            if (i > 0) await turns[i - 1]!.promise;
            await write(out);
          },
        );
        turns[i]!.resolve();
      } catch (err) {
        turns[i]!.reject(err);
        throw err;
      }
    });
  }

  /**
   * Folds ciphertexts [from, to) on a worker: `fill(into, at)` copies the sum's and the updates'
   * frames for that range into a chunk buffer, and `take(out)` receives the summed frames before
   * both buffers go back to the spares.
   */
  private async foldChunk(
    preset: HePreset,
    keyId: string,
    shape: FoldShape,
    from: number,
    to: number,
    fill: (into: Uint8Array, at: number) => Promise<void>,
    take: (out: Uint8Array) => Promise<void>,
  ): Promise<void> {
    const span = to - from;
    const inputBytes = span * (shape.sumFrame + shape.updates * shape.updateFrame);
    const input = new Uint8Array(this.buffer(inputBytes), 0, inputBytes);
    const output = this.buffer(span * shape.outFrame);
    this.inTransit += 2;
    this.mostInTransit = Math.max(this.mostInTransit, this.inTransit);
    let back: { output: ArrayBuffer; input: ArrayBuffer } | undefined;
    try {
      await fill(input, 0);
      const job: FoldJob = {
        op: 'fold',
        preset,
        presetHash: shape.presetHash,
        keyId,
        parameterCount: shape.parameterCount,
        input: input.buffer as ArrayBuffer,
        inputBytes,
        sumContributors: shape.sumContributors,
        updates: shape.updates,
        output,
        from,
        to,
      };
      back = await this.workers().run<{ output: ArrayBuffer; input: ArrayBuffer }>(job, [
        job.input,
        job.output,
      ]);
      await take(new Uint8Array(back.output, 0, span * shape.outFrame));
    } finally {
      // Buffers not moved to a worker (a failed fill) are still ours; moved ones come back in `back`
      // (a job the worker refused keeps them, detached here, for its garbage collector).
      if (back) this.spare.push(back.input, back.output);
      else if (input.buffer.byteLength > 0) this.spare.push(input.buffer as ArrayBuffer, output);
      this.inTransit -= 2;
      this.spare.splice(Math.max(4 * this.workers().size, this.mostInTransit));
    }
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

  /** Stops the worker threads. */
  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
  }

  /**
   * A buffer of at least `bytes` for a chunk in transit: the smallest spare one that fits (so that
   * small outputs do not take the inputs' buffers, leaving inputs to allocate), or a new one.
   */
  private buffer(bytes: number): ArrayBuffer {
    let best = -1;
    for (let i = 0; i < this.spare.length; i++) {
      const size = this.spare[i]!.byteLength;
      if (size >= bytes && (best < 0 || size < this.spare[best]!.byteLength)) best = i;
    }
    return best >= 0 ? this.spare.splice(best, 1)[0]! : new ArrayBuffer(bytes);
  }

  private workers(): HePool {
    this.pool ??= new HePool(SUM_WORKER, this.threads);
    return this.pool;
  }
}
