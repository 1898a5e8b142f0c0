import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { datasetCommitment, sha256Hex } from './commitment.js';

const sha = (...parts: Uint8Array[]) => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};

describe('datasetCommitment', () => {
  const [a, b, c] = ['a', 'b', 'c'].map((text) => sha256Hex(Buffer.from(text))) as [string, string, string];

  it('follows the documented construction for three leaves', () => {
    const sorted = [a, b, c].sort();
    const leaves = sorted.map((hash) => sha(Uint8Array.of(0), Buffer.from(hash, 'hex')));
    const [l0, l1, l2] = leaves as [Buffer, Buffer, Buffer];
    // The odd third leaf moves up unchanged and is paired at the next level.
    const expected = sha(Uint8Array.of(1), sha(Uint8Array.of(1), l0, l1), l2).toString('hex');
    expect(datasetCommitment([c, a, b])).toBe(expected);
  });

  it('does not depend on order but does on content and multiplicity', () => {
    expect(datasetCommitment([a, b, c])).toBe(datasetCommitment([c, b, a]));
    expect(datasetCommitment([a, b])).not.toBe(datasetCommitment([a, c]));
    expect(datasetCommitment([a, a])).not.toBe(datasetCommitment([a]));
  });

  it('commits the empty dataset to SHA-256 of no bytes', () => {
    expect(datasetCommitment([])).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('rejects entries that are not SHA-256 hex digests', () => {
    expect(() => datasetCommitment(['abc'])).toThrow(RangeError);
  });
});
