/**
 * Fixed-point quantisation and headroom. Integer HE (BGV) adds exactly modulo a plaintext modulus t,
 * so every sum must stay inside (-t/2, t/2). Site i uploads
 *
 *   x_i = round(S * (n_i / n_max) * clip(w_i, B))
 *
 * with n_max the federation's cap on samples per site, B its weight range and K_max its site cap.
 * Then |sum x_i| <= K_max * (S * B + 1/2), which fits when S = (half(t) - K_max) / (K_max * B). Sites
 * decrypt sum x_i and divide by S * sum(n_i) / n_max; each rounding is at most 1/2, so a global weight
 * is off by at most K * n_max / (2 * S * sum n_i) <= n_max / (2 * S) (K sites, each with >= 1 sample).
 * A federation is refused unless that worst case is within 2^-PRECISION_BITS of B.
 */
import { HeHeadroomError } from '../errors.js';
import type { HePreset } from './presets.js';

/** Bits of precision over the weight range a federation must keep in the worst case. */
export const PRECISION_BITS = 14;

/**
 * Largest |e| of one fresh ciphertext's noise: SEAL samples e from a centred binomial of standard
 * deviation 3.2, bounded by 21.
 */
const FRESH_NOISE_BOUND = 21;

/**
 * Bound used for one CKKS-encrypted value: encoding rounding plus fresh noise, after decoding, as an
 * absolute error at scale 2^40 with N = 8192 (the measured error is about 2^-30; this keeps 64x margin).
 */
const CKKS_VALUE_ERROR = 2 ** -24;

/** What a federation declares that bounds its sums. */
export interface QuantisationLimits {
  /** Most sites that can ever contribute to one round. */
  maxSites: number;
  /** Most samples one site may report in a round. */
  maxSamplesPerSite: number;
  /** Weights are clipped to [-maxAbsWeight, maxAbsWeight] before encoding. */
  maxAbsWeight: number;
}

/**
 * How sites turn weights into slot values and back. A site encodes
 * `x = (n_i / sampleDivisor) * clip(w, maxAbsWeight) * scale` (rounded when `integer`), and a decrypted
 * sum becomes the global weight `sum x * sampleDivisor / (scale * sum n_i)`.
 */
export interface QuantisationPlan {
  preset: string;
  /** `integer`: BGV, exact sums of rounded values. `approximate`: CKKS. `float64`: plaintext. */
  kind: 'integer' | 'approximate' | 'float64';
  sampleDivisor: number;
  scale: number;
  maxAbsWeight: number;
  maxSites: number;
  /** Worst-case absolute error of one global weight, over every allowed round. */
  worstCaseError: number;
}

/**
 * Plans quantisation for a federation on `preset`.
 * @throws HeHeadroomError with a sentence naming the numbers that do not fit and what to change.
 */
export function planQuantisation(preset: HePreset, limits: QuantisationLimits): QuantisationPlan {
  const { maxSites, maxSamplesPerSite, maxAbsWeight } = limits;
  if (!(maxSites >= 1 && maxSamplesPerSite >= 1 && maxAbsWeight > 0)) {
    throw new HeHeadroomError('maxSites, maxSamplesPerSite and maxAbsWeight must all be positive.');
  }
  const base = { preset: preset.name, maxAbsWeight, maxSites };
  if (preset.scheme === 'plaintext') {
    return {
      ...base,
      kind: 'float64',
      sampleDivisor: 1,
      scale: 1,
      worstCaseError: maxAbsWeight * maxSites * 2 ** -52,
    };
  }
  if (preset.scheme === 'ckks') {
    // x = n_i * w needs |sum x| * scale below half the first-level modulus (2^100 at [60,40,40]).
    const dataBits = preset.coeffModulusBits.slice(0, -1).reduce((a, b) => a + b, 0);
    const sumBits = Math.log2(maxSites * maxSamplesPerSite * maxAbsWeight * preset.scale);
    if (sumBits >= dataBits - 1) {
      throw new HeHeadroomError(
        `HE preset ${preset.name} cannot hold sums of up to ${maxSites} sites x ${maxSamplesPerSite} samples x weights within ±${maxAbsWeight}; lower maxSites or maxSamplesPerSite.`,
      );
    }
    return { ...base, kind: 'approximate', sampleDivisor: 1, scale: 1, worstCaseError: CKKS_VALUE_ERROR };
  }
  const t = Number(preset.plainModulus);
  const q = Number(preset.coeffModulus[0]);
  const half = (t - 1) / 2;
  // BGV decryption is exact while |m + t * e| < q / 2 for the summed plaintext m < K * t and noise e.
  const noiseSites = Math.floor(q / (2 * t * (1 + FRESH_NOISE_BOUND)));
  if (maxSites > noiseSites) {
    throw new HeHeadroomError(
      `HE preset ${preset.name} decrypts sums of at most ${noiseSites} sites; lower maxSites from ${maxSites}.`,
    );
  }
  const scale = (half - maxSites) / (maxSites * maxAbsWeight);
  const worstCaseError = maxSamplesPerSite / (2 * scale);
  const allowed = maxAbsWeight * 2 ** -PRECISION_BITS;
  if (!(scale >= 1) || worstCaseError > allowed) {
    const product = maxSites * maxSamplesPerSite;
    const cap = Math.floor((product * allowed) / worstCaseError);
    throw new HeHeadroomError(
      `HE preset ${preset.name} cannot quantise this federation: with up to ${maxSites} sites of up to ` +
        `${maxSamplesPerSite} samples and weights within ±${maxAbsWeight}, a global weight could be off by ` +
        `${worstCaseError.toPrecision(2)}, above the ${allowed.toPrecision(2)} (${PRECISION_BITS} bits of ±${maxAbsWeight}) it promises. ` +
        `Bring maxSites x maxSamplesPerSite from ${product} down to at most ${cap}, or use the ckks-8192 preset.`,
    );
  }
  return { ...base, kind: 'integer', sampleDivisor: maxSamplesPerSite, scale, worstCaseError };
}

/**
 * The bound on the absolute error of each global weight decrypted from a sum of `siteCount` updates
 * over `totalSamples` samples, against float64 FedAvg of the same (clipped) weights.
 */
export function aggregateErrorBound(plan: QuantisationPlan, siteCount: number, totalSamples: number): number {
  const k = Math.max(1, siteCount);
  const n = Math.max(1, totalSamples);
  // float64 arithmetic around the rounding (scaling, then dividing) adds a few ulps of the range.
  const arithmetic = plan.maxAbsWeight * 2 ** -44;
  switch (plan.kind) {
    case 'integer':
      return (k * plan.sampleDivisor) / (2 * plan.scale * n) + arithmetic;
    case 'approximate':
      return (k * CKKS_VALUE_ERROR) / n + arithmetic;
    case 'float64':
      return plan.worstCaseError + arithmetic;
  }
}

/** The factor a site multiplies its clipped weights by before encoding: scale * n_i / sampleDivisor. */
export function siteFactor(plan: QuantisationPlan, sampleCount: number): number {
  return (plan.scale * sampleCount) / plan.sampleDivisor;
}

/** The factor a decrypted sum is multiplied by to give global weights: sampleDivisor / (scale * sum n_i). */
export function averageFactor(plan: QuantisationPlan, totalSamples: number): number {
  return plan.sampleDivisor / (plan.scale * totalSamples);
}

/** `w` clipped to [-bound, bound]; NaN (refused before encryption, never encrypted) reads as 0. */
function clip(w: number, bound: number): number {
  return w > bound ? bound : w < -bound ? -bound : Number.isNaN(w) ? 0 : w;
}

/**
 * Writes `round(factor * clip(values[from + j], bound))` for j < count into `out` as little-endian
 * int64 (lo, hi int32 pairs), zero-filling the rest of `out`. Returns how many values were clipped.
 * Exact for |result| < 2^53, which the plan guarantees.
 */
export function quantiseSlots(
  values: ArrayLike<number>,
  from: number,
  count: number,
  factor: number,
  bound: number,
  out: Int32Array,
): number {
  let clipped = 0;
  for (let j = 0; j < count; j++) {
    const v = values[from + j]!;
    const w = clip(v, bound);
    if (w !== v && !Number.isNaN(v)) clipped++;
    const x = Math.round(factor * w);
    out[2 * j] = x >>> 0;
    out[2 * j + 1] = Math.floor(x / 4294967296);
  }
  out.fill(0, 2 * count);
  return clipped;
}

/**
 * CKKS slot values: `factor * clip(values[from + j], bound)` for j < count into `out`, zero past
 * `count`. Returns how many values were clipped.
 */
export function scaleSlots(
  values: ArrayLike<number>,
  from: number,
  count: number,
  factor: number,
  bound: number,
  out: Float64Array,
): number {
  let clipped = 0;
  for (let j = 0; j < count; j++) {
    const v = values[from + j]!;
    const w = clip(v, bound);
    if (w !== v && !Number.isNaN(v)) clipped++;
    out[j] = factor * w;
  }
  out.fill(0, count);
  return clipped;
}

/** Reads `count` little-endian int64 values (lo, hi int32 pairs) from `slots` into `out` at `at`. */
export function readSlots(slots: Int32Array, count: number, out: Float64Array, at: number): void {
  for (let j = 0; j < count; j++) out[at + j] = slots[2 * j + 1]! * 4294967296 + (slots[2 * j]! >>> 0);
}
