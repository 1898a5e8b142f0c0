import { describe, expect, it } from 'vitest';
import { HePresetError } from '../errors.js';
import {
  checkPresetSecurity,
  DEFAULT_HE_PRESET,
  HE_PRESETS,
  HE_STANDARD_128_MAX_BITS,
  type HePreset,
  hePreset,
  presetHash,
} from './presets.js';
import { loadSeal, presetContext } from './seal.js';

describe('HE presets', () => {
  it('the default is BGV batching at one 60-bit prime with seeded secret-key encryption', () => {
    const p = hePreset(DEFAULT_HE_PRESET);
    expect(p).toMatchObject({
      scheme: 'bgv',
      polyModulusDegree: 8192,
      coeffModulusBits: [60],
      encryption: 'secret-key',
    });
    // ~8 bytes a parameter on the wire: one 8-byte coefficient per slot plus a seed.
    expect(p.updateCiphertextBytes / p.slotsPerCiphertext).toBeLessThan(8.1);
  });

  it('every built-in preset passes the 128-bit HE security table and its own consistency checks', () => {
    for (const p of Object.values(HE_PRESETS)) expect(checkPresetSecurity(p), p.name).toBeUndefined();
  });

  it('refuses presets outside the 128-bit table', () => {
    const bgv = hePreset('bgv-8192');
    expect(checkPresetSecurity({ ...bgv, polyModulusDegree: 2048 })).toMatch(
      /below 128-bit security \(at most 54/,
    );
    expect(checkPresetSecurity({ ...bgv, polyModulusDegree: 3000 })).toMatch(/not in the HE standard table/);
    expect(checkPresetSecurity({ ...bgv, coeffModulusBits: [59] })).toMatch(/prime 0 has 60 bits, not 59/);
    expect(checkPresetSecurity({ ...bgv, plainModulus: '1099511480323' })).toMatch(/not 1 mod 2N/);
  });

  it('hashes are stable and change with any parameter', () => {
    const bgv = hePreset('bgv-8192');
    // Pinned: this hash is in ledgers and every ciphertext frame; changing it orphans them.
    expect(presetHash(bgv)).toBe('f938c3dadaca92ce00e57abb35ebe52aa2c7ef6a4e8201135bca102941f93cc1');
    expect(presetHash(hePreset('ckks-8192'))).toBe(
      'f6e643a86b419eb8c9c7112c1a0a2babfbb75fc3016c0dcad32addcd41311ea8',
    );
    const variants: HePreset[] = [
      { ...bgv, plainModulus: '1099511922689' },
      { ...bgv, coeffModulus: ['1152921504606748673'] },
      { ...bgv, encryption: 'public-key' },
      { ...bgv, name: 'bgv-other' },
    ];
    for (const v of variants) expect(presetHash(v)).not.toBe(presetHash(bgv));
    expect(new Set(Object.values(HE_PRESETS).map(presetHash)).size).toBe(Object.keys(HE_PRESETS).length);
  });

  it('unknown preset names are refused with the list of known ones', () => {
    expect(() => hePreset('bfv-4096')).toThrow(HePresetError);
    expect(() => hePreset('bfv-4096')).toThrow(/plaintext, bgv-8192, ckks-8192/);
  });

  it("SEAL agrees: the table is SEAL's own tc128 limit, and SEAL picks each preset's primes and parms_id", async () => {
    const seal = await loadSeal();
    for (const [n, bits] of Object.entries(HE_STANDARD_128_MAX_BITS)) {
      expect(seal.CoeffModulus.MaxBitCount(Number(n), seal.SecurityLevel.tc128)).toBe(bits);
    }
    for (const p of Object.values(HE_PRESETS)) {
      if (p.scheme === 'plaintext') continue;
      const ctx = presetContext(seal, p);
      const chosen = seal.CoeffModulus.Create(p.polyModulusDegree, Int32Array.from(p.coeffModulusBits));
      expect([...chosen.toArray()].map(String)).toEqual([...p.coeffModulus]);
      chosen.delete();
      if (p.scheme === 'bgv') {
        const t = seal.PlainModulus.Batching(p.polyModulusDegree, 40);
        expect(String(t.value)).toBe(p.plainModulus);
        t.delete();
      }
      ctx.free();
    }
  });
});
