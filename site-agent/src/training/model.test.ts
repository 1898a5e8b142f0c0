import { createHash } from 'node:crypto';
import { builtinModelSpec, parameterCount } from '@radfed/shared';
import { beforeAll, describe, expect, it } from 'vitest';
import { TrainingInputError } from '../errors.js';
import { selectBackend } from './backend.js';
import { flattenWeights, initialWeights, unflattenWeights } from './model.js';

const spec = builtinModelSpec('dense-ae-32');

const sameBytes = (a: Float32Array, b: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

beforeAll(async () => {
  await selectBackend();
});

describe('initialWeights', () => {
  it('is the same vector on every call and in every process', () => {
    const weights = initialWeights(spec);
    expect(weights).toHaveLength(parameterCount(spec));
    expect(sameBytes(initialWeights(spec), weights)).toBe(true);
    // Pinned: all sites must derive the same round-0 model from the seed, across machines and
    // releases. A change here (e.g. a tfjs RNG change) breaks federations already running.
    const digest = createHash('sha256').update(
      new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength),
    );
    expect(digest.digest('hex')).toBe('b78a1576ea14e3f6f9de4ac646195c0a4eaf2d59e9521322690d6142f176958a');
  });

  it('draws Glorot-uniform kernels and zero biases, and follows the seed', () => {
    const [encoderKernel, encoderBias, decoderKernel, decoderBias] = unflattenWeights(
      initialWeights(spec),
      spec,
    );
    const limit = Math.sqrt(6 / (1024 + 64));
    for (const kernel of [encoderKernel, decoderKernel]) {
      const values = Array.from(kernel ?? []);
      expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(limit);
      expect(new Set(values).size).toBeGreaterThan(values.length / 2);
    }
    expect(encoderBias?.every((v) => v === 0)).toBe(true);
    expect(decoderBias?.every((v) => v === 0)).toBe(true);
    expect(
      sameBytes(initialWeights(builtinModelSpec('dense-ae-32', { seed: 7 })), initialWeights(spec)),
    ).toBe(false);
  });
});

describe('flattenWeights / unflattenWeights', () => {
  it('round-trips in spec order', () => {
    const flat = Float32Array.from({ length: parameterCount(spec) }, (_, i) => i);
    const parts = unflattenWeights(flat, spec);
    expect(parts.map((part) => part.length)).toEqual([1024 * 64, 64, 64 * 1024, 1024]);
    expect(parts[1]?.[0]).toBe(1024 * 64);
    expect(sameBytes(flattenWeights(parts, spec), flat)).toBe(true);
  });

  it('refuses vectors and parts of the wrong size', () => {
    expect(() => unflattenWeights(new Float32Array(10), spec)).toThrow(TrainingInputError);
    expect(() => flattenWeights([new Float32Array(1)], spec)).toThrow(/got 1 weight tensors/);
    const parts = unflattenWeights(new Float32Array(parameterCount(spec)), spec);
    parts[3] = new Float32Array(3);
    expect(() => flattenWeights(parts, spec)).toThrow(/decoder\/bias has 3 values/);
  });
});
