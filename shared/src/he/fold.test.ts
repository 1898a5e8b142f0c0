/**
 * The coordinator's JavaScript modular addition against BigInt arithmetic, at the edges of the
 * modulus and on random residues, for one level (BGV's 60-bit prime) and two (CKKS's 60- and 40-bit
 * primes), and its refusal of an unreduced coefficient.
 */
import { describe, expect, it } from 'vitest';
import { addReduced } from './fold.js';
import { dataModuli } from './framing.js';
import { hePreset } from './presets.js';

const N = 8;

function words(values: bigint[]): Uint32Array {
  const out = new Uint32Array(2 * values.length);
  values.forEach((v, i) => {
    out[2 * i] = Number(v & 0xffffffffn);
    out[2 * i + 1] = Number(v >> 32n);
  });
  return out;
}

function values(w: Uint32Array): bigint[] {
  return Array.from({ length: w.length / 2 }, (_, i) => (BigInt(w[2 * i + 1]!) << 32n) | BigInt(w[2 * i]!));
}

/** A deterministic residue below q. */
function residue(q: bigint, seed: number): bigint {
  let x = BigInt(seed) * 0x9e3779b97f4a7c15n;
  x ^= x >> 29n;
  return (x * 0xbf58476d1ce4e5b9n) % q;
}

describe('addReduced', () => {
  for (const name of ['bgv-8192', 'ckks-8192'] as const) {
    it(`adds modulo each level's prime exactly (${name})`, () => {
      const moduli = dataModuli(hePreset(name));
      const qhi = moduli.map((q) => Number(q >> 32n));
      const qlo = moduli.map((q) => Number(q & 0xffffffffn));
      const a: bigint[] = [];
      const b: bigint[] = [];
      for (const [level, q] of moduli.entries()) {
        // Edges: 0 + 0, (q-1) + 1 = 0, (q-1) + (q-1), a carry out of the low word, and random pairs.
        const pairs: [bigint, bigint][] = [
          [0n, 0n],
          [q - 1n, 1n],
          [q - 1n, q - 1n],
          [0xffffffffn, 1n],
        ];
        while (pairs.length < N)
          pairs.push([residue(q, 7 * pairs.length + level), residue(q, 11 * pairs.length + 3)]);
        for (const [x, y] of pairs) {
          a.push(x);
          b.push(y);
        }
      }
      const acc = new Uint32Array(2 * a.length);
      expect(addReduced(acc, words(a), words(b), N, qhi, qlo)).toBe(-1);
      const expected = a.map((x, i) => (x + b[i]!) % moduli[Math.floor(i / N)]!);
      expect(values(acc)).toEqual(expected);
      // In place (acc += b), as a fold with no separate base does.
      expect(addReduced(acc, undefined, words(b), N, qhi, qlo)).toBe(-1);
      expect(values(acc)).toEqual(expected.map((x, i) => (x + b[i]!) % moduli[Math.floor(i / N)]!));
    });
  }

  it('returns the first coefficient that is not reduced', () => {
    const [q] = dataModuli(hePreset('bgv-8192'));
    const b = Array.from({ length: N }, (_, i) => BigInt(i));
    b[5] = q!;
    const acc = new Uint32Array(2 * N);
    expect(addReduced(acc, undefined, words(b), N, [Number(q! >> 32n)], [Number(q! & 0xffffffffn)])).toBe(5);
  });
});
