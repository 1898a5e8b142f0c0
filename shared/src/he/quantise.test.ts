import { describe, expect, it } from 'vitest';
import { HeHeadroomError } from '../errors.js';
import { hePreset } from './presets.js';
import {
  aggregateErrorBound,
  averageFactor,
  PRECISION_BITS,
  planQuantisation,
  quantiseSlots,
  readSlots,
  siteFactor,
} from './quantise.js';

const bgv = hePreset('bgv-8192');
const defaults = { maxSites: 100, maxSamplesPerSite: 100_000, maxAbsWeight: 8 };

describe('quantisation and headroom', () => {
  it('fits the default federation limits with room to spare', () => {
    const plan = planQuantisation(bgv, defaults);
    expect(plan.kind).toBe('integer');
    expect(plan.worstCaseError).toBeLessThanOrEqual(8 * 2 ** -PRECISION_BITS);
    // The largest possible sum stays inside (-t/2, t/2).
    const t = Number(bgv.plainModulus);
    expect(defaults.maxSites * (plan.scale * defaults.maxAbsWeight + 0.5)).toBeLessThan((t - 1) / 2);
  });

  it('refuses sites x samples that cannot keep the promised precision, saying what to change', () => {
    const err = (() => {
      try {
        planQuantisation(bgv, { maxSites: 1000, maxSamplesPerSite: 1_000_000, maxAbsWeight: 8 });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(HeHeadroomError);
    expect(err?.message).toMatch(/up to 1000 sites of up to 1000000 samples/);
    expect(err?.message).toMatch(/Bring maxSites x maxSamplesPerSite from 1000000000 down to at most \d+/);
    expect(err?.message).toMatch(/ckks-8192/);
  });

  it('refuses more sites than BGV noise allows, and accepts the same limits on CKKS', () => {
    expect(() => planQuantisation(bgv, { maxSites: 30_000, maxSamplesPerSite: 1, maxAbsWeight: 1 })).toThrow(
      /decrypts sums of at most 23\d\d\d sites/,
    );
    const ckks = planQuantisation(hePreset('ckks-8192'), {
      maxSites: 1000,
      maxSamplesPerSite: 1_000_000,
      maxAbsWeight: 8,
    });
    expect(ckks.kind).toBe('approximate');
  });

  it('the cap moves with the weight range only through the error it allows', () => {
    const narrow = planQuantisation(bgv, { ...defaults, maxAbsWeight: 1 });
    const wide = planQuantisation(bgv, { ...defaults, maxAbsWeight: 64 });
    expect(narrow.scale / wide.scale).toBeCloseTo(64, 6);
    expect(wide.worstCaseError / narrow.worstCaseError).toBeCloseTo(64, 6);
  });

  it('packs signed 40-bit values exactly and counts clipping', () => {
    const plan = planQuantisation(bgv, defaults);
    const values = Float32Array.from([0, 1, -1, 7.99, -8, 12, -100, 0.000123]);
    const out = new Int32Array(2 * 16);
    const factor = siteFactor(plan, 100_000);
    const clipped = quantiseSlots(values, 0, values.length, factor, 8, out);
    expect(clipped).toBe(2);
    const back = new Float64Array(16);
    readSlots(out, 16, back, 0);
    for (let i = 0; i < values.length; i++) {
      const w = Math.max(-8, Math.min(8, values[i]!));
      expect(back[i]).toBe(Math.round(factor * w));
      expect(Math.abs(back[i]! * averageFactor(plan, 100_000) - w)).toBeLessThanOrEqual(
        aggregateErrorBound(plan, 1, 100_000),
      );
    }
    expect([...back.subarray(values.length)]).toEqual(new Array(8).fill(0));
    expect(Math.abs(back[5]!)).toBeGreaterThan(2 ** 32); // beyond int32: the hi word matters
  });
});
