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

  it('streams the same sum in chunks, checking values as it reads them', async () => {
    const n = 70_000; // more than one 65,536-value chunk
    const a = bytes(Array.from({ length: n }, (_, i) => i));
    const b = bytes(Array.from({ length: n }, (_, i) => 0.5 * i));
    const source = (u: Uint8Array) => ({
      bytes: u.byteLength,
      readAt: async (offset: number, into: Uint8Array) =>
        into.set(u.subarray(offset, offset + into.byteLength)),
    });
    const parts: Uint8Array[] = [];
    await agg.foldStream(source(a), source(b), n, async (chunk) => {
      parts.push(chunk.slice());
    });
    expect(Buffer.concat(parts).equals(Buffer.from(agg.fold(a, b)))).toBe(true);
    const bad = b.slice();
    new Float64Array(bad.buffer)[69_000] = Number.POSITIVE_INFINITY;
    await expect(agg.foldStream(undefined, source(bad), n, async () => {})).rejects.toThrow(
      /value 69000 is not a finite number/,
    );
    await expect(agg.foldStream(undefined, source(b.subarray(8)), n, async () => {})).rejects.toThrow(
      InvalidUpdateError,
    );
  });

  it('reads misaligned input', () => {
    const buf = new Uint8Array(25);
    buf.set(bytes([4, 5, 6]), 1);
    expect([...asFloat64(buf.subarray(1))]).toEqual([4, 5, 6]);
  });
});
