import { canonicalJson, sha256Hex } from '../canonical/canonical.js';
import { HePresetError } from '../errors.js';

/** The homomorphic schemes RadFed runs; `plaintext` is the unencrypted comparison baseline. */
export type HeScheme = 'plaintext' | 'bgv' | 'ckks';

/**
 * How sites encrypt. `secret-key`: SEAL's symmetric encryption with seeded serialisation, so half of
 * every fresh ciphertext is a 64-byte seed (only key holders can make valid ciphertexts). `public-key`:
 * the usual public-key encryption, both polynomials on the wire.
 */
export type HeEncryption = 'secret-key' | 'public-key';

/**
 * A complete, fixed set of HE parameters. Everything that changes what a ciphertext means is here and
 * in {@link presetHash}, so two federations that share a hash can read each other's ciphertexts and
 * two that do not never can.
 */
export interface HePreset {
  /** Registry name, e.g. `bgv-8192`. */
  name: string;
  scheme: HeScheme;
  /** Ring dimension N (power of two); 0 for plaintext. */
  polyModulusDegree: number;
  /** Bit sizes of the coefficient-modulus primes, as passed to SEAL's CoeffModulus.Create. */
  coeffModulusBits: readonly number[];
  /** The primes SEAL picks for those sizes (decimal); checked when a context is built. */
  coeffModulus: readonly string[];
  /** BGV plaintext modulus (decimal prime, 1 mod 2N for batching); "0" otherwise. */
  plainModulus: string;
  /** CKKS encoding scale; 0 otherwise. */
  scale: number;
  encryption: HeEncryption;
  /**
   * SEAL's parms_id (hex, 32 bytes) of the level fresh ciphertexts are at: a hash of the parameters,
   * which every ciphertext header repeats. Empty for plaintext.
   */
  parmsId: string;
  /** Values packed per ciphertext: N for BGV batching, N/2 for CKKS, 1 for plaintext. */
  slotsPerCiphertext: number;
  /** Serialized size of one fresh (uploaded) ciphertext with compression off, in bytes. */
  updateCiphertextBytes: number;
  /**
   * Serialized size of one ciphertext with both polynomials (not seeded), compression off, in bytes:
   * what a site hands SEAL when it decrypts an aggregate of a public-key preset.
   */
  fullCiphertextBytes: number;
  /** One line for operators. */
  description: string;
}

/**
 * Largest total coefficient-modulus size (bits) for 128-bit classical security with a ternary secret,
 * by ring dimension: Table 1 of the Homomorphic Encryption Standard (Albrecht et al., 2018), the same
 * limits SEAL's CoeffModulus.MaxBitCount(N, tc128) returns.
 */
export const HE_STANDARD_128_MAX_BITS: Readonly<Record<number, number>> = {
  1024: 27,
  2048: 54,
  4096: 109,
  8192: 218,
  16384: 438,
  32768: 881,
};

/** The 60-bit NTT-friendly prime SEAL picks for N = 8192 (also the first CKKS prime below). */
const Q60_N8192 = '1152921504606830593';

/**
 * Built-in presets. `bgv-8192` is the default: BGV batching over fixed-point values at one 60-bit
 * prime (60 of the 218 bits 128-bit security allows at N = 8192), secret-key seeded encryption, so a
 * fresh ciphertext costs ~8 bytes a parameter and sums are exact modular arithmetic.
 */
export const HE_PRESETS = {
  plaintext: {
    name: 'plaintext',
    scheme: 'plaintext',
    polyModulusDegree: 0,
    coeffModulusBits: [],
    coeffModulus: [],
    plainModulus: '0',
    scale: 0,
    encryption: 'secret-key',
    parmsId: '',
    slotsPerCiphertext: 1,
    updateCiphertextBytes: 8,
    fullCiphertextBytes: 8,
    description: 'no encryption: float64 n_i * w_i in the clear (tests and comparisons only)',
  },
  'bgv-8192': {
    name: 'bgv-8192',
    scheme: 'bgv',
    polyModulusDegree: 8192,
    coeffModulusBits: [60],
    coeffModulus: [Q60_N8192],
    plainModulus: '1099511480321',
    scale: 0,
    encryption: 'secret-key',
    parmsId: '6bb6347dfc71bb8fc1b809b0116de7b47efe267538bf1c820435ef06e738a937',
    slotsPerCiphertext: 8192,
    updateCiphertextBytes: 65730,
    fullCiphertextBytes: 131185,
    description: 'BGV, N=8192, q=60 bits, t=40 bits, secret-key seeded: exact sums, ~8 bytes/parameter',
  },
  'ckks-8192': {
    name: 'ckks-8192',
    scheme: 'ckks',
    polyModulusDegree: 8192,
    coeffModulusBits: [60, 40, 40],
    coeffModulus: [Q60_N8192, '1099510890497', '1099511480321'],
    plainModulus: '0',
    scale: 2 ** 40,
    encryption: 'secret-key',
    parmsId: '12d07a83d1477fc4b90a7075c1428058d1e88b6c7186932e7c200d2289ff8f2e',
    slotsPerCiphertext: 4096,
    updateCiphertextBytes: 131266,
    fullCiphertextBytes: 262257,
    description:
      'CKKS, N=8192, q=[60,40,40], scale 2^40, secret-key seeded: approximate sums, ~32 bytes/parameter',
  },
} as const satisfies Record<string, HePreset>;

export type HePresetName = keyof typeof HE_PRESETS;

/** Preset names in a fixed order, for schemas and help text. */
export const HE_PRESET_NAMES = Object.keys(HE_PRESETS) as [HePresetName, ...HePresetName[]];

/** The preset new federations get when they name none. */
export const DEFAULT_HE_PRESET: HePresetName = 'bgv-8192';

/** True when `name` is a built-in preset. */
export function isHePresetName(name: string): name is HePresetName {
  return Object.hasOwn(HE_PRESETS, name);
}

/**
 * The built-in preset called `name`.
 * @throws HePresetError naming the presets this build has when there is no such preset.
 */
export function hePreset(name: string): HePreset {
  if (!isHePresetName(name)) {
    throw new HePresetError(`There is no HE preset "${name}"; this build has ${HE_PRESET_NAMES.join(', ')}.`);
  }
  return HE_PRESETS[name];
}

/** True when updates under `preset` are ciphertexts (anything but plaintext). */
export function isEncrypted(preset: HePreset): boolean {
  return preset.scheme !== 'plaintext';
}

/**
 * The preset's stable hash (lower-case hex SHA-256): canonical JSON of every parameter that fixes
 * what a ciphertext means, including the primes, so a change to any of them changes the hash.
 * The ledger pins it and every ciphertext frame carries it.
 */
export function presetHash(preset: HePreset): string {
  return sha256Hex(
    canonicalJson({
      format: 'radfed.he-preset/v1',
      name: preset.name,
      scheme: preset.scheme,
      polyModulusDegree: preset.polyModulusDegree,
      coeffModulus: [...preset.coeffModulus],
      plainModulus: preset.plainModulus,
      scale: preset.scale,
      encryption: preset.encryption,
      slotsPerCiphertext: preset.slotsPerCiphertext,
    }),
  );
}

/**
 * Checks a preset against the 128-bit HE security standard table and for internal consistency.
 * Returns a sentence naming the problem, or undefined when the preset is sound.
 */
export function checkPresetSecurity(preset: HePreset): string | undefined {
  if (preset.scheme === 'plaintext') return undefined;
  const n = preset.polyModulusDegree;
  const max = HE_STANDARD_128_MAX_BITS[n];
  if (max === undefined) {
    return `${preset.name}: N=${n} is not in the HE standard table (1024..32768, powers of two).`;
  }
  const bits = preset.coeffModulusBits.reduce((a, b) => a + b, 0);
  if (bits > max) {
    return `${preset.name}: a ${bits}-bit coefficient modulus at N=${n} is below 128-bit security (at most ${max} bits).`;
  }
  if (preset.coeffModulus.length !== preset.coeffModulusBits.length) {
    return `${preset.name}: ${preset.coeffModulusBits.length} prime sizes but ${preset.coeffModulus.length} primes.`;
  }
  for (const [i, p] of preset.coeffModulus.entries()) {
    const prime = BigInt(p);
    if (prime.toString(2).length !== preset.coeffModulusBits[i]) {
      return `${preset.name}: prime ${i} has ${prime.toString(2).length} bits, not ${preset.coeffModulusBits[i]}.`;
    }
    if (prime % BigInt(2 * n) !== 1n) return `${preset.name}: prime ${i} is not 1 mod 2N, so no NTT.`;
  }
  if (preset.scheme === 'bgv') {
    const t = BigInt(preset.plainModulus);
    if (t % BigInt(2 * n) !== 1n)
      return `${preset.name}: the plaintext modulus is not 1 mod 2N, so no batching.`;
    if (t >= BigInt(preset.coeffModulus[0]!)) return `${preset.name}: the plaintext modulus must be below q.`;
    if (preset.slotsPerCiphertext !== n) return `${preset.name}: BGV batching packs N=${n} slots.`;
  }
  if (preset.scheme === 'ckks') {
    if (!(preset.scale > 1)) return `${preset.name}: CKKS needs a scale above 1.`;
    if (preset.slotsPerCiphertext !== n / 2) return `${preset.name}: CKKS packs N/2=${n / 2} slots.`;
  }
  return undefined;
}

for (const preset of Object.values(HE_PRESETS)) {
  const problem = checkPresetSecurity(preset);
  // A built-in preset that fails is a bug in this file, not an input error.
  if (problem) throw new HePresetError(`Built-in HE preset is unsound: ${problem}`);
}
