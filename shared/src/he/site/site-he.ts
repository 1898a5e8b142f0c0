/**
 * The site's HE operations: making a federation's keys (at the key custodian), encrypting
 * `x_i = quantise(n_i * w_i)` for upload and decrypting the summed aggregate. Security: secret keys
 * stay in this process (main thread and its worker threads); what leaves is ciphertext and public
 * parameters.
 */
import { randomBytes } from 'node:crypto';
import { HeInputError, HeKeyError } from '../../errors.js';
import {
  aggregateContributors,
  aggregateFrameBytes,
  checkFrames,
  updateBytes,
  updateFrameBytes,
} from '../framing.js';
import { HePool } from '../pool.js';
import { type HePreset, hePreset, presetHash } from '../presets.js';
import { decodePublicParameters, encodePublicParameters, heKeyId } from '../public-parameters.js';
import { aggregateErrorBound, averageFactor, type QuantisationPlan, siteFactor } from '../quantise.js';
import type { DecryptJob, EncryptJob, KeyArgs } from './cipher-worker.js';

const CIPHER_WORKER = new URL('./cipher-worker.ts', import.meta.url);
/** Ciphertexts per job: a few MB in flight per job at N = 8192. */
const CHUNK_CIPHERTEXTS = 16;

/** A federation's HE key as a site holds it. */
export interface HeKeyMaterial {
  /** hex SHA-256 of `publicParameters`; every ciphertext frame names it. */
  keyId: string;
  /** Public parameters as published (see encodePublicParameters). */
  publicParameters: Uint8Array;
  /** SEAL SecretKey serialisation. Never leaves the site unwrapped. */
  secretKey: Uint8Array;
}

/** An encrypted update and how many weights had to be clipped to the federation's range. */
export interface EncryptedUpdate {
  bytes: Uint8Array;
  clipped: number;
}

/** Decrypted global weights and the bound on their error against float64 FedAvg. */
export interface DecryptedAverage {
  weights: Float64Array;
  errorBound: number;
}

/**
 * The usual CKKS setup elsewhere (e.g. NVIDIA FLARE's defaults): N=8192, q=[60,40,40], scale 2^40,
 * encrypted with the public key, both polynomials on the wire. For comparisons (`pnpm bench:he`);
 * federations use the secret-key presets.
 */
export function ckksPublicKeyVariant(): HePreset {
  return {
    ...hePreset('ckks-8192'),
    name: 'ckks-8192-pk',
    encryption: 'public-key',
    updateCiphertextBytes: hePreset('ckks-8192').fullCiphertextBytes,
    description: 'CKKS, N=8192, q=[60,40,40], scale 2^40, public-key encryption (comparison only)',
  };
}

/** HE for one site, on a pool of worker threads with one SEAL instance each. */
export class SiteHe {
  private pool: HePool | undefined;

  /** @param threads worker threads (default: cores available, at most 8). */
  constructor(private readonly threads?: number) {}

  /** Generates a fresh key for `preset`: a secret key and the public parameters that name it. */
  async generateKeys(preset: HePreset): Promise<HeKeyMaterial> {
    const job = { op: 'keygen', preset };
    const made = await this.workers().run<{
      secretKey: Uint8Array;
      sealParameters: Uint8Array;
      publicKey: Uint8Array;
    }>(job);
    const publicParameters = encodePublicParameters({
      presetHash: presetHash(preset),
      keyNonce: randomBytes(32).toString('hex'),
      sealParameters: made.sealParameters,
      publicKey: made.publicKey,
    });
    return { keyId: heKeyId(publicParameters), publicParameters, secretKey: made.secretKey };
  }

  /**
   * Encrypts `weights` (the shared tensors, flat) for upload by a site with `sampleCount` samples:
   * each weight is clipped to the plan's range, multiplied by scale * n_i / sampleDivisor and, for
   * BGV, rounded; values are packed `slotsPerCiphertext` to a ciphertext, in order.
   */
  async encrypt(
    preset: HePreset,
    key: HeKeyMaterial,
    weights: Float32Array,
    sampleCount: number,
    plan: QuantisationPlan,
  ): Promise<EncryptedUpdate> {
    for (let i = 0; i < weights.length; i++) {
      if (!Number.isFinite(weights[i]!)) {
        throw new HeInputError(`Weight ${i} is not a finite number; nothing was encrypted.`);
      }
    }
    const args = this.keyArgs(preset, key);
    const slots = preset.slotsPerCiphertext;
    const frame = updateFrameBytes(preset);
    const output = new Uint8Array(updateBytes(preset, weights.length));
    const count = Math.ceil(weights.length / slots);
    const pool = this.workers();
    // Bounded chunks moved to a worker and back: little memory in transit, none left behind.
    const clipped = await pool.chunks(count, CHUNK_CIPHERTEXTS, async (from, to) => {
      const job: EncryptJob = {
        op: 'encrypt',
        ...args,
        presetHash: presetHash(preset),
        values: weights.slice(from * slots, to * slots).buffer,
        parameterCount: weights.length,
        factor: siteFactor(plan, sampleCount),
        bound: plan.maxAbsWeight,
        output: new ArrayBuffer((to - from) * frame),
        from,
        to,
      };
      const out = await pool.run<{ clipped: number; output: ArrayBuffer }>(job, [job.values, job.output]);
      output.set(new Uint8Array(out.output), from * frame);
      return out.clipped;
    });
    return { bytes: output, clipped: clipped.reduce((a, b) => a + b, 0) };
  }

  /**
   * Decrypts an aggregate into the raw slot sums (sum of x_i), after checking its frames are under
   * `key` and `preset` (and, given `siteCount`, that it sums that many updates). For seeded presets
   * this expands every contributor's seed (see framing.ts), so it costs about one seeded-ciphertext
   * load per contributor and ciphertext.
   * @throws HeFormatError when the bytes are not an aggregate under this key and preset.
   */
  async decryptSums(
    preset: HePreset,
    key: HeKeyMaterial,
    aggregate: Uint8Array,
    parameterCount: number,
    siteCount?: number,
  ): Promise<Float64Array> {
    checkFrames(aggregate, {
      preset,
      presetHash: presetHash(preset),
      kind: 'aggregate',
      keyId: key.keyId,
      parameterCount,
      contributors: siteCount,
    });
    const args = this.keyArgs(preset, key);
    const slots = preset.slotsPerCiphertext;
    const contributors = aggregateContributors(aggregate);
    const frame = aggregateFrameBytes(preset, contributors);
    const output = new Float64Array(parameterCount);
    const count = Math.ceil(parameterCount / slots);
    const pool = this.workers();
    await pool.chunks(count, CHUNK_CIPHERTEXTS, async (from, to) => {
      const job: DecryptJob = {
        op: 'decrypt',
        ...args,
        // A copy (Buffer.slice would be a view, and moving it would detach the caller's bytes).
        input: Uint8Array.prototype.slice.call(aggregate, from * frame, to * frame).buffer,
        parameterCount,
        contributors,
        output: new ArrayBuffer((to - from) * slots * 8),
        from,
        to,
      };
      const out = await pool.run<{ output: ArrayBuffer }>(job, [job.input, job.output]);
      const got = new Float64Array(out.output);
      output.set(got.subarray(0, Math.min(got.length, parameterCount - from * slots)), from * slots);
    });
    return output;
  }

  /**
   * Decrypts an aggregate of `siteCount` updates over `totalSamples` samples into global weights
   * (FedAvg), with the bound on their error.
   */
  async decryptAverage(
    preset: HePreset,
    key: HeKeyMaterial,
    aggregate: Uint8Array,
    parameterCount: number,
    totalSamples: number,
    siteCount: number,
    plan: QuantisationPlan,
  ): Promise<DecryptedAverage> {
    const sums = await this.decryptSums(preset, key, aggregate, parameterCount, siteCount);
    const factor = averageFactor(plan, totalSamples);
    for (let i = 0; i < sums.length; i++) sums[i] = sums[i]! * factor;
    return { weights: sums, errorBound: aggregateErrorBound(plan, siteCount, totalSamples) };
  }

  /** Stops the worker threads. */
  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
  }

  private keyArgs(preset: HePreset, key: HeKeyMaterial): KeyArgs {
    const pub = decodePublicParameters(key.publicParameters);
    if (pub.presetHash !== presetHash(preset)) {
      throw new HeKeyError(`This HE key was made for another preset than ${preset.name}.`);
    }
    if (heKeyId(key.publicParameters) !== key.keyId) {
      throw new HeKeyError('This HE key does not match its public parameters.');
    }
    return { preset, keyId: key.keyId, secretKey: key.secretKey, publicKey: pub.publicKey };
  }

  private workers(): HePool {
    this.pool ??= new HePool(CIPHER_WORKER, this.threads);
    return this.pool;
  }
}
