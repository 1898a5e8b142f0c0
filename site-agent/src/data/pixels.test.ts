import { describe, expect, it } from 'vitest';
import { centreOutOrder, hasContent, replaceNonFinite, resizeArea, standardise } from './pixels.js';

describe('resizeArea', () => {
  it('averages the area each output pixel covers', () => {
    // biome-ignore format: a 4x4 image reads best as a grid
    const src = Float32Array.from([
      1, 1, 2, 2,
      1, 1, 2, 2,
      3, 3, 4, 4,
      3, 3, 4, 4,
    ]);
    expect(Array.from(resizeArea(src, 4, 4, 2, 2))).toEqual([1, 2, 3, 4]);
  });

  it('weights partial overlaps when the scale is not an integer', () => {
    // Output pixel 0 covers source [0, 1.5): 1 * (1/1.5) + 2 * (0.5/1.5).
    const out = resizeArea(Float32Array.from([1, 2, 3]), 3, 1, 2, 1);
    expect(out[0]).toBeCloseTo(4 / 3, 5);
    expect(out[1]).toBeCloseTo(8 / 3, 5);
  });

  it('keeps the mean and handles non-square input and upsampling', () => {
    const src = Float32Array.from({ length: 40 * 25 }, (_, i) => (i * 7919) % 101);
    const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
    const down = resizeArea(src, 40, 25, 8, 5);
    expect(down).toHaveLength(40);
    expect(mean(down)).toBeCloseTo(mean(src), 3);
    expect(Array.from(resizeArea(Float32Array.from([5, 7]), 2, 1, 4, 2))).toEqual([5, 5, 7, 7, 5, 5, 7, 7]);
  });
});

describe('standardise', () => {
  it('gives zero mean and unit variance', () => {
    const out = standardise(Float32Array.from([10, 20, 30, 40]));
    const mean = out.reduce((s, v) => s + v, 0) / out.length;
    const variance = out.reduce((s, v) => s + (v - mean) ** 2, 0) / out.length;
    expect(mean).toBeCloseTo(0, 6);
    expect(variance).toBeCloseTo(1, 5);
  });
});

describe('hasContent', () => {
  it('rejects constant, blank and single-hot-pixel slices', () => {
    expect(hasContent(new Float32Array(1024).fill(-1024))).toBe(false);
    const hot = new Float32Array(1024);
    hot[5] = 1000;
    expect(hasContent(hot)).toBe(false);
  });

  it('accepts a slice with a visible structure', () => {
    const disc = Float32Array.from({ length: 1024 }, (_, i) =>
      Math.hypot((i % 32) - 16, i / 32 - 16) < 6 ? 1 : 0,
    );
    expect(hasContent(disc)).toBe(true);
  });
});

describe('replaceNonFinite', () => {
  it('fills NaN and infinities with the smallest finite value', () => {
    expect(
      Array.from(replaceNonFinite(Float32Array.from([Number.NaN, 3, -2, Number.POSITIVE_INFINITY]))),
    ).toEqual([-2, 3, -2, -2]);
  });
});

describe('centreOutOrder', () => {
  it('orders indices by distance from the centre, lower first on ties', () => {
    expect(centreOutOrder(5)).toEqual([2, 1, 3, 0, 4]);
    expect(centreOutOrder(4)).toEqual([1, 2, 0, 3]);
    expect(centreOutOrder(1)).toEqual([0]);
  });
});
