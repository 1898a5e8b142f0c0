/**
 * The flat parameter vector and its shared part. Only tensors marked `shared` in the model spec are
 * uploaded and aggregated; the others (e.g. normalisation layers under FedBN) never leave the site.
 */
import type { ModelSpec } from '@radfed/shared';

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The shared tensors of `flat`, concatenated in spec order. */
export function sharedPart(spec: ModelSpec, flat: Float32Array): Float32Array {
  const out: number[] = [];
  let at = 0;
  for (const t of spec.tensors) {
    const n = size(t.shape);
    if (t.shared) for (let i = 0; i < n; i++) out.push(flat[at + i]!);
    at += n;
  }
  return Float32Array.from(out);
}

/** `local` with its shared tensors replaced by `shared` (as produced by {@link sharedPart}). */
export function withShared(spec: ModelSpec, local: Float32Array, shared: ArrayLike<number>): Float32Array {
  const out = Float32Array.from(local);
  let at = 0;
  let s = 0;
  for (const t of spec.tensors) {
    const n = size(t.shape);
    if (t.shared) for (let i = 0; i < n; i++) out[at + i] = shared[s++]!;
    at += n;
  }
  return out;
}

/** n * w as little-endian float64: the plaintext update encoding `plain-f64-weighted`. */
export function weightedUpdate(shared: Float32Array, sampleCount: number): Uint8Array {
  const out = new Float64Array(shared.length);
  for (let i = 0; i < shared.length; i++) out[i] = shared[i]! * sampleCount;
  return new Uint8Array(out.buffer);
}

/** Global shared weights from a downloaded sum of n_i * w_i and sum n_i (FedAvg). */
export function averageFromSum(sum: Uint8Array, totalSamples: number): Float32Array {
  const copy = sum.byteOffset % 8 === 0 ? sum : sum.slice();
  const values = new Float64Array(copy.buffer, copy.byteOffset, copy.byteLength / 8);
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i]! / totalSamples;
  return out;
}
