import { describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';

describe('safetensors writer', () => {
  it('writes the documented layout: u64 header length, 8-aligned JSON header, sorted little-endian data', () => {
    const bytes = encodeSafetensors(
      [
        { name: 'b.weight', dtype: 'F32', shape: [2], data: Float32Array.of(1.5, -2) },
        { name: 'a.num_batches_tracked', dtype: 'I64', shape: [], data: BigInt64Array.of(7n) },
      ],
      { format: 'pt' },
    );
    const length = Number(bytes.readBigUInt64LE(0));
    expect(length % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + length).toString());
    expect(header).toEqual({
      __metadata__: { format: 'pt' },
      'a.num_batches_tracked': { dtype: 'I64', shape: [], data_offsets: [0, 8] },
      'b.weight': { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    });
    expect(bytes.readFloatLE(8 + length + 8)).toBe(1.5);
    const back = decodeSafetensors(bytes);
    expect(back.tensors.map((t) => [t.name, [...(t.data as Iterable<number | bigint>)]])).toEqual([
      ['a.num_batches_tracked', [7n]],
      ['b.weight', [1.5, -2]],
    ]);
  });
});
