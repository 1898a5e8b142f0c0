/**
 * Helpers for this repository's tests and benchmarks only (`@radfed/shared/testing`). Not a public
 * API: nothing in `coordinator/src` or `site-agent/src` imports it.
 */

/**
 * Deterministic pseudo-random weights in ±3 (a linear congruential generator seeded with `seed`), so
 * a test or benchmark gets the same model update on every run and every site. Inside the ±4 weight
 * range tests give their federations, so nothing is clipped.
 */
export function testWeights(seed: number, n: number): Float32Array {
  let x = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = (x / 2 ** 32 - 0.5) * 6;
  }
  return out;
}
