/**
 * Small deterministic randomness for the training loop: shuffles and per-batch noise seeds that are
 * the same on every machine for the same seed, independent of the tfjs backend.
 */

/** A uint32 seed mixed from integer parts (murmur3 finaliser per part), so nearby inputs diverge. */
export function deriveSeed(...parts: number[]): number {
  let hash = 0x9e37_79b9;
  for (const part of parts) {
    hash = Math.imul(hash ^ (part >>> 0), 0x85eb_ca6b);
    hash ^= hash >>> 13;
    hash = Math.imul(hash, 0xc2b2_ae35);
    hash ^= hash >>> 16;
  }
  return hash >>> 0;
}

/** mulberry32: a uniform generator on [0, 1) from a uint32 seed. */
export function uniformGenerator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b_79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** 0..n-1 in a seeded Fisher-Yates order. */
export function shuffledIndices(n: number, seed: number): number[] {
  const next = uniformGenerator(seed);
  const order = Array.from({ length: n }, (_, index) => index);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j] ?? j, order[i] ?? i];
  }
  return order;
}
