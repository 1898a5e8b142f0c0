import { describe, expect, it } from 'vitest';
import { InvalidUpdateError } from '../errors.js';
import { asFloat64, PlaintextAggregator } from './plaintext.js';

const bytes = (values: number[]) => new Uint8Array(Float64Array.from(values).buffer);

describe('plaintext weighted FedAvg aggregator', () => {
  const agg = new PlaintextAggregator();

  it('adds updates exactly, leaving its inputs untouched', () => {
    const a = bytes([1, 2, 3]);
    const b = bytes([10, 20, 30]);
    const sum = agg.fold(agg.fold(undefined, a), b);
    expect([...asFloat64(sum)]).toEqual([11, 22, 33]);
    expect([...asFloat64(a)]).toEqual([1, 2, 3]);
  });

  it('refuses a wrong size or a non-finite value', () => {
    expect(() => agg.validate(bytes([1, 2]), 3)).toThrow(InvalidUpdateError);
    expect(() => agg.validate(bytes([1, Number.NaN, 3]), 3)).toThrow(/value 1 is not a finite number/);
    expect(() => agg.validate(bytes([1, 2, 3]), 3)).not.toThrow();
  });

  it('reads misaligned input', () => {
    const buf = new Uint8Array(25);
    buf.set(bytes([4, 5, 6]), 1);
    expect([...asFloat64(buf.subarray(1))]).toEqual([4, 5, 6]);
  });
});
