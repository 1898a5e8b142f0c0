/**
 * Encrypt on real SEAL worker threads, add in the coordinator's JavaScript fold, decrypt with SEAL
 * again: exact integer sums for BGV, the same aggregate whatever the fold order, the FedAvg error
 * bound, CKKS (secret- and public-key), replayed ciphertexts refused, and every malformed-ciphertext
 * case refused in JavaScript.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeFormatError } from '../errors.js';
import { testWeights } from '../testing.js';
import { CiphertextSum } from './ciphertext-sum.js';
import {
  aggregateBytes,
  aggregateContributors,
  checkFrames,
  FRAME_HEADER_BYTES,
  updateBytes,
  updateFrameBytes,
} from './framing.js';
import { hePreset, presetHash } from './presets.js';
import { decodePublicParameters } from './public-parameters.js';
import { aggregateErrorBound, planQuantisation, quantiseSlots, readSlots, siteFactor } from './quantise.js';
import { ckksPublicKeyVariant, type HeKeyMaterial, SiteHe } from './site/index.js';

const bgv = hePreset('bgv-8192');
const limits = { maxSites: 50, maxSamplesPerSite: 1000, maxAbsWeight: 4 };
const P = 3 * 8192 + 1000; // a partial last ciphertext, and more ciphertexts than threads

const weights = (seed: number, n = P): Float32Array => testWeights(seed, n); // within ±3

describe('HE encrypt / add / decrypt', () => {
  const site = new SiteHe(2);
  const sums = new CiphertextSum(2);
  let key: HeKeyMaterial;

  beforeAll(async () => {
    key = await site.generateKeys(bgv);
  });

  afterAll(async () => {
    await site.close();
    await sums.close();
  });

  it('public parameters name the preset and carry no public key for secret-key presets', () => {
    const p = decodePublicParameters(key.publicParameters);
    expect(p.presetHash).toBe(presetHash(bgv));
    expect(p.publicKey.byteLength).toBe(0);
    expect(key.secretKey.byteLength).toBeGreaterThan(60_000);
  });

  it('BGV sums are exact: decrypted sums equal the integer sums of the quantised values', async () => {
    const plan = planQuantisation(bgv, limits);
    const inputs = [
      { w: weights(1), n: 10 },
      { w: weights(2), n: 999 },
      { w: weights(3), n: 1 },
    ];
    let sum: Uint8Array | undefined;
    const updates: Uint8Array[] = [];
    for (const { w, n } of inputs) {
      const up = await site.encrypt(bgv, key, w, n, plan);
      expect(up.bytes.byteLength).toBe(updateBytes(bgv, P));
      sums.checkUpdate(bgv, key.keyId, up.bytes, P);
      sum = await sums.fold(bgv, sum, up.bytes, P);
      updates.push(up.bytes);
    }
    expect(sum!.byteLength).toBe(aggregateBytes(bgv, P, 3));
    expect(aggregateContributors(sum!)).toBe(3);
    const decrypted = await site.decryptSums(bgv, key, sum!, P, 3);
    // Folding all at once, or in another order, gives the same bytes: modular additions commute and
    // the seed list is kept sorted.
    const batch = await sums.foldMany(bgv, undefined, updates, P);
    expect(Buffer.from(batch).equals(Buffer.from(sum!))).toBe(true);
    const reversed = await sums.fold(
      bgv,
      await sums.foldMany(bgv, undefined, updates.slice(1).reverse(), P),
      updates[0]!,
      P,
    );
    expect(Buffer.from(reversed).equals(Buffer.from(sum!))).toBe(true);
    await expect(site.decryptSums(bgv, key, sum!, P, 4)).rejects.toThrow(/sums 3 updates, but 4/);
    const expected = new Float64Array(P);
    const slots = new Int32Array(2 * P);
    const one = new Float64Array(P);
    for (const { w, n } of inputs) {
      quantiseSlots(w, 0, P, siteFactor(plan, n), plan.maxAbsWeight, slots);
      readSlots(slots, P, one, 0);
      for (let i = 0; i < P; i++) expected[i]! += one[i]!;
    }
    expect(Buffer.from(decrypted.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
  });

  it('the decrypted average is float64 FedAvg within the stated bound', async () => {
    const plan = planQuantisation(bgv, limits);
    const ns = [3, 40, 700];
    const ws = ns.map((_, i) => weights(10 + i));
    let sum: Uint8Array | undefined;
    for (const [i, n] of ns.entries())
      sum = await sums.fold(bgv, sum, (await site.encrypt(bgv, key, ws[i]!, n, plan)).bytes, P);
    const total = ns.reduce((a, b) => a + b, 0);
    const avg = await site.decryptAverage(bgv, key, sum!, P, total, ns.length, plan);
    expect(avg.errorBound).toBe(aggregateErrorBound(plan, 3, total));
    let max = 0;
    for (let j = 0; j < P; j++) {
      const fedavg = ns.reduce((a, n, i) => a + n * ws[i]![j]!, 0) / total;
      max = Math.max(max, Math.abs(avg.weights[j]! - fedavg));
    }
    expect(max).toBeLessThanOrEqual(avg.errorBound);
    expect(max).toBeGreaterThan(0);
  });

  it('refuses malformed updates in JavaScript, saying why, without SEAL', async () => {
    const plan = planQuantisation(bgv, limits);
    const good = (await site.encrypt(bgv, key, weights(7), 5, plan)).bytes;
    const reason = (bytes: Uint8Array, keyId = key.keyId, n = P) => {
      try {
        sums.checkUpdate(bgv, keyId, bytes, n, true);
        return 'accepted';
      } catch (err) {
        expect(err).toBeInstanceOf(HeFormatError);
        return (err as HeFormatError).reason;
      }
    };
    const frame = updateFrameBytes(bgv);
    const payload = FRAME_HEADER_BYTES;
    const flip = (at: number, value: number) => {
      const b = good.slice();
      b[at] = value;
      return b;
    };
    expect(reason(good)).toBe('accepted');
    expect(reason(good, 'ab'.repeat(32))).toBe('key');
    expect(reason(good.subarray(0, good.length - 100))).toBe('truncated');
    expect(reason(good, key.keyId, P - 8192)).toBe('count');
    const relabelled = good.slice();
    for (let i = 0; i * frame < relabelled.length; i++) relabelled.set(Buffer.alloc(32, 1), i * frame + 8);
    expect(reason(relabelled)).toBe('preset');
    // A coefficient at or above q, a SEAL header byte, the seed's PRNG type, a frame's index.
    expect(reason(flip(frame + payload + 113 + 7, 0xff))).toBe('corrupt');
    expect(reason(flip(payload + 20, good[payload + 20]! ^ 1))).toBe('corrupt');
    expect(reason(flip(frame - 65, 9))).toBe('corrupt');
    expect(reason(flip(2 * frame + 72, 0))).toBe('corrupt');
    // The fold checks coefficients itself (the upload path skips the scan): refused, sum untouched.
    const other = await sums.fold(
      bgv,
      undefined,
      (await site.encrypt(bgv, key, weights(8), 5, plan)).bytes,
      P,
    );
    const before = Buffer.from(other);
    const unreduced = flip(frame + payload + 113 + 7, 0xff);
    expect(() => sums.checkUpdate(bgv, key.keyId, unreduced, P)).not.toThrow();
    await expect(sums.fold(bgv, other, unreduced, P)).rejects.toMatchObject({ reason: 'corrupt' });
    expect(Buffer.from(other).equals(before)).toBe(true);
    const agg = await sums.fold(bgv, undefined, good, P);
    // An aggregate is not an update.
    expect(() =>
      checkFrames(agg, {
        preset: bgv,
        presetHash: presetHash(bgv),
        kind: 'update',
        keyId: undefined,
        parameterCount: P,
      }),
    ).toThrow(HeFormatError);
  });

  it('refuses an update whose ciphertexts are already in the sum, leaving the sum as it was', async () => {
    const plan = planQuantisation(bgv, limits);
    const a = (await site.encrypt(bgv, key, weights(31), 5, plan)).bytes;
    const b = (await site.encrypt(bgv, key, weights(32), 6, plan)).bytes;
    const sum = await sums.foldMany(bgv, undefined, [a, b], P);
    const before = Buffer.from(sum);
    await expect(sums.fold(bgv, sum, a, P)).rejects.toMatchObject({ reason: 'duplicate' });
    await expect(sums.foldMany(bgv, undefined, [b, b], P)).rejects.toThrow(/already in the round's sum/);
    expect(Buffer.from(sum).equals(before)).toBe(true);
    // A damaged aggregate (seeds out of order) is refused by the site before SEAL sees it.
    const swapped = sum.slice();
    const seeds = FRAME_HEADER_BYTES + 8 + 8 * 8192;
    swapped.copyWithin(seeds, seeds + 64, seeds + 128);
    await expect(site.decryptSums(bgv, key, swapped, P)).rejects.toThrow(/download the aggregate again/);
  });

  it('a streamed fold writes exactly the in-memory fold, in order, and refuses what fold refuses', async () => {
    const plan = planQuantisation(bgv, limits);
    const a = (await site.encrypt(bgv, key, weights(41), 5, plan)).bytes;
    const b = (await site.encrypt(bgv, key, weights(42), 6, plan)).bytes;
    const source = (bytes: Uint8Array) => ({
      bytes: bytes.byteLength,
      readAt: async (offset: number, into: Uint8Array) => {
        if (offset + into.byteLength > bytes.byteLength) throw new RangeError('past the end');
        into.set(bytes.subarray(offset, offset + into.byteLength));
      },
    });
    const streamed = async (sum: Uint8Array | undefined, update: Uint8Array) => {
      const parts: Uint8Array[] = [];
      await sums.foldStream(bgv, key.keyId, sum && source(sum), source(update), P, async (chunk) => {
        parts.push(chunk.slice());
      });
      return Buffer.concat(parts);
    };
    const first = await streamed(undefined, a);
    expect(first.equals(Buffer.from(await sums.fold(bgv, undefined, a, P)))).toBe(true);
    const second = await streamed(first, b);
    expect(second.equals(Buffer.from(await sums.foldMany(bgv, undefined, [a, b], P)))).toBe(true);
    // Refusals name the problem: a truncated update, another key, a replay, a damaged coefficient.
    await expect(streamed(first, b.subarray(0, b.length - 10))).rejects.toMatchObject({
      reason: 'truncated',
    });
    const other = await site.generateKeys(bgv);
    const foreign = (await site.encrypt(bgv, other, weights(43), 5, plan)).bytes;
    await expect(streamed(first, foreign)).rejects.toMatchObject({ reason: 'key' });
    await expect(streamed(second, a)).rejects.toMatchObject({ reason: 'duplicate' });
    const damaged = b.slice();
    damaged[3 * updateFrameBytes(bgv) + FRAME_HEADER_BYTES + 113 + 7] = 0xff;
    await expect(streamed(first, damaged)).rejects.toMatchObject({ reason: 'corrupt' });
  });

  it('an aggregate under one key does not decrypt under another', async () => {
    const other = await site.generateKeys(bgv);
    const plan = planQuantisation(bgv, limits);
    const sum = await sums.fold(bgv, undefined, (await site.encrypt(bgv, key, weights(9), 5, plan)).bytes, P);
    await expect(site.decryptSums(bgv, other, sum, P)).rejects.toThrow(/under HE key/);
  });

  it('CKKS, with the secret key (seeded) and the public key, within its bound', async () => {
    for (const preset of [hePreset('ckks-8192'), ckksPublicKeyVariant()]) {
      const k = await site.generateKeys(preset);
      const plan = planQuantisation(preset, limits);
      const n = 4100; // two CKKS ciphertexts, the second nearly empty
      const a = weights(21, n);
      const b = weights(22, n);
      let sum = await sums.fold(preset, undefined, (await site.encrypt(preset, k, a, 30, plan)).bytes, n);
      sum = await sums.fold(preset, sum, (await site.encrypt(preset, k, b, 70, plan)).bytes, n);
      const avg = await site.decryptAverage(preset, k, sum, n, 100, 2, plan);
      let max = 0;
      for (let j = 0; j < n; j++)
        max = Math.max(max, Math.abs(avg.weights[j]! - (30 * a[j]! + 70 * b[j]!) / 100));
      expect(max, preset.name).toBeLessThanOrEqual(avg.errorBound);
    }
  });
});
