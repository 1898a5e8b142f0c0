import { builtinModelSpec, type ModelSpec } from '@radfed/shared';
import { describe, expect, it } from 'vitest';
import { averageFromSum, sharedPart, weightedUpdate, withShared } from './weights.js';

// A FedBN-style spec: the middle tensor (normalisation) stays local.
const spec: ModelSpec = {
  ...builtinModelSpec(),
  tensors: [
    { name: 'a', shape: [2], shared: true },
    { name: 'bn', shape: [3], shared: false },
    { name: 'b', shape: [1], shared: true },
  ],
};

describe('shared/local weight layout', () => {
  const flat = Float32Array.from([1, 2, 10, 20, 30, 3]);

  it('uploads only shared tensors and keeps local ones on merge', () => {
    expect([...sharedPart(spec, flat)]).toEqual([1, 2, 3]);
    expect([...withShared(spec, flat, [7, 8, 9])]).toEqual([7, 8, 10, 20, 30, 9]);
  });

  it('round-trips FedAvg: sum of n_i * w_i divided by sum n_i', () => {
    const a = weightedUpdate(Float32Array.from([1, 2, 3]), 10);
    const b = weightedUpdate(Float32Array.from([3, 4, 5]), 30);
    const sum = new Float64Array(3);
    for (const u of [a, b]) {
      const v = new Float64Array(u.buffer);
      for (let i = 0; i < 3; i++) sum[i]! += v[i]!;
    }
    expect([...averageFromSum(new Uint8Array(sum.buffer), 40)]).toEqual([2.5, 3.5, 4.5]);
  });
});
