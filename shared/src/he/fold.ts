/**
 * The coordinator's ciphertext addition, in plain JavaScript: no SEAL, no key. An aggregate ciphertext
 * is the modular sum of the updates' c0 polynomials plus the list of their seeds (see framing.ts);
 * adding an update is one pass of 64-bit modular additions over its coefficients, each checked to be
 * reduced on the way, and one sorted insertion of its seed.
 */
import { HeFormatError } from '../errors.js';
import {
  aggregateFrameBytes,
  aggregateLayout,
  compareBytes,
  dataModuli,
  FRAME_HEADER_BYTES,
  isSeeded,
  SEED_BYTES,
  updateFrameBytes,
  updateLayout,
  writeAggregateMeta,
  writeFrameHeader,
} from './framing.js';
import type { HePreset } from './presets.js';

/** Ciphertexts [from, to) of a running sum and of updates, to be added into `out`. */
export interface FoldRange {
  preset: HePreset;
  presetHash: string;
  keyId: string;
  parameterCount: number;
  /** The running sum's frames [from, to), or undefined for the first update of a round. */
  sum: Uint8Array | undefined;
  /** How many updates `sum` already holds (0 without a sum). */
  sumContributors: number;
  /** Each update's frames [from, to). */
  updates: Uint8Array[];
  /** Receives the aggregate frames [from, to); must start 4-byte aligned. */
  out: Uint8Array;
  from: number;
  to: number;
}

/** This thread's scratch for one ciphertext's coefficients, kept between calls. */
let scratch = new Uint32Array(0);
/** Zeros to add the first update of a round to (`out` may be a reused buffer). */
let zeros = new Uint32Array(0);

/**
 * Writes `sum + updates` for ciphertexts [from, to) into `out`. Inputs are never modified, so when this
 * throws the running sum is as it was. The frames' headers and fixed SEAL fields must have been
 * checked (checkFrames with or without the coefficient scan); coefficients are checked here.
 *
 * @throws HeFormatError `corrupt` for a coefficient not reduced modulo its prime, `duplicate` for an
 *   update whose ciphertext (by its seed) is already in the sum or given twice.
 */
export function foldRange(r: FoldRange): void {
  const { preset } = r;
  const n = preset.polyModulusDegree;
  const span = r.to - r.from;
  const contributors = r.sumContributors + r.updates.length;
  const seeded = isSeeded(preset);
  const up = updateLayout(preset);
  const agg = aggregateLayout(preset);
  const upFrame = updateFrameBytes(preset);
  const sumFrame = aggregateFrameBytes(preset, r.sumContributors);
  const outFrame = aggregateFrameBytes(preset, contributors);
  const moduli = dataModuli(preset);
  const qhi = moduli.map((q) => Number(q >> 32n));
  const qlo = moduli.map((q) => Number(q & 0xffffffffn));
  const words = 2 * agg.coefficients;
  if ((r.out.byteOffset + FRAME_HEADER_BYTES + agg.coefficientsAt) % 4 !== 0) {
    throw new RangeError('foldRange: the output must be 4-byte aligned');
  }
  // Update coefficients sit at odd offsets (SEAL's layout): copied into an aligned scratch to add.
  if (scratch.length !== words) {
    scratch = new Uint32Array(words);
    zeros = new Uint32Array(words);
  }
  const scratchBytes = new Uint8Array(scratch.buffer);
  const count = Math.ceil(r.parameterCount / preset.slotsPerCiphertext);
  const seeds: { bytes: Uint8Array; at: number }[] = [];
  for (let c = 0; c < span; c++) {
    const i = r.from + c;
    const outAt = c * outFrame;
    writeFrameHeader(r.out, outAt, {
      kind: 'aggregate',
      presetHash: r.presetHash,
      keyId: r.keyId,
      index: i,
      count,
      slots: Math.min(preset.slotsPerCiphertext, r.parameterCount - i * preset.slotsPerCiphertext),
      payloadBytes: outFrame - FRAME_HEADER_BYTES,
    });
    writeAggregateMeta(r.out, outAt + FRAME_HEADER_BYTES, contributors, agg.polys);
    const accAt = outAt + FRAME_HEADER_BYTES + agg.coefficientsAt;
    const acc = new Uint32Array(r.out.buffer, r.out.byteOffset + accAt, words);
    // The running sum is this code's own output, read in place (sites re-check every coefficient);
    // without one, the first update is added to zeros.
    let base: Uint32Array = zeros;
    if (r.sum) {
      const s = r.sum.byteOffset + c * sumFrame + FRAME_HEADER_BYTES + agg.coefficientsAt;
      base =
        s % 4 === 0 ? new Uint32Array(r.sum.buffer, s, words) : aligned(r.sum, s - r.sum.byteOffset, words);
    }
    for (const [k, update] of r.updates.entries()) {
      const u = c * upFrame + FRAME_HEADER_BYTES + up.coefficientsAt;
      scratchBytes.set(update.subarray(u, u + 4 * words));
      const bad = addReduced(acc, k === 0 ? base : undefined, scratch, n, qhi, qlo);
      if (bad >= 0) {
        throw new HeFormatError(
          'corrupt',
          `Ciphertext ${i} of ${r.updates.length > 1 ? `update ${k + 1}` : 'the update'} is not a well-formed SEAL ciphertext for this preset (coefficient ${bad} is not reduced); the bytes are damaged, re-encrypt the update.`,
        );
      }
    }
    if (!seeded) continue;
    seeds.length = 0;
    for (let k = 0; k < r.sumContributors; k++) {
      seeds.push({ bytes: r.sum!, at: c * sumFrame + FRAME_HEADER_BYTES + agg.seedAt + k * SEED_BYTES });
    }
    for (const update of r.updates) {
      seeds.push({ bytes: update, at: c * upFrame + FRAME_HEADER_BYTES + up.seedAt });
    }
    seeds.sort((a, b) => compareBytes(a.bytes, a.at, b.bytes, b.at, SEED_BYTES));
    let at = outAt + FRAME_HEADER_BYTES + agg.seedAt;
    for (const [k, s] of seeds.entries()) {
      if (k > 0) {
        const prev = seeds[k - 1]!;
        if (compareBytes(prev.bytes, prev.at, s.bytes, s.at, SEED_BYTES) === 0) {
          throw new HeFormatError(
            'duplicate',
            `Ciphertext ${i} of this update is already in the round's sum (the same seed); a ciphertext counts once, so a replayed or copied update is refused.`,
          );
        }
      }
      r.out.set(s.bytes.subarray(s.at, s.at + SEED_BYTES), at);
      at += SEED_BYTES;
    }
  }
}

/** A 4-byte-aligned copy of `words` 32-bit words of `bytes` from `at`. */
function aligned(bytes: Uint8Array, at: number, words: number): Uint32Array {
  const out = new Uint32Array(words);
  new Uint8Array(out.buffer).set(bytes.subarray(at, at + 4 * words));
  return out;
}

/**
 * acc = (a ?? acc) + b, coefficient-wise modulo each level's prime (q < 2^62, as [lo, hi] 32-bit
 * halves; levels of n coefficients each, in order, repeating per polynomial). Returns the first
 * coefficient of b that is not reduced, leaving acc partly written, or -1.
 */
export function addReduced(
  acc: Uint32Array,
  a: Uint32Array | undefined,
  b: Uint32Array,
  n: number,
  qhi: number[],
  qlo: number[],
): number {
  const from = a ?? acc;
  const levels = qhi.length;
  const blocks = acc.length / (2 * n);
  for (let block = 0; block < blocks; block++) {
    const level = block % levels;
    const hiQ = qhi[level]!;
    const loQ = qlo[level]!;
    const end = 2 * n * (block + 1);
    for (let j = 2 * n * block; j < end; j += 2) {
      const blo = b[j]!;
      const bhi = b[j + 1]!;
      if (bhi > hiQ || (bhi === hiQ && blo >= loQ)) return j >> 1;
      // Branch-free: a sum of two uniform residues needs reducing half the time, which no branch
      // predictor guesses (measured: twice as fast as if/else). Comparisons become 0/1 numbers.
      let lo = from[j]! + blo;
      let hi = from[j + 1]! + bhi;
      const carry = +(lo >= 4294967296);
      lo -= carry * 4294967296;
      hi += carry;
      // s >= q, exactly: (hi - hiQ) * 2^32 dominates unless it is 0, so float rounding keeps the sign.
      const ge = +((hi - hiQ) * 4294967296 + (lo - loQ) >= 0);
      lo -= ge * loQ;
      hi -= ge * hiQ;
      const borrow = +(lo < 0);
      lo += borrow * 4294967296;
      hi -= borrow;
      acc[j] = lo;
      acc[j + 1] = hi;
    }
  }
  return -1;
}
