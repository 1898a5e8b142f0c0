/**
 * node-seal (Microsoft SEAL compiled to WebAssembly): loading it and building contexts from presets.
 * Internal to the HE modules and their worker threads; not exported from the package, so the
 * coordinator never reaches SEAL's key types through it.
 *
 * node-seal 6.0.3 is the newest that loads on Node 20 (7.x needs newer WebAssembly features). SEAL
 * objects live on the WASM heap, which only grows: every object made here is freed with `.delete()`.
 */

import type { Context } from 'node-seal/implementation/context.js';
import type { EncryptionParameters } from 'node-seal/implementation/encryption-parameters.js';
import type { SEALLibrary } from 'node-seal/implementation/seal.js';
import SealModule from 'node-seal/throws_wasm_node_umd.js';
import { HePresetError } from '../errors.js';
import type { HePreset } from './presets.js';

export type { SEALLibrary };

type SealFactory = () => Promise<SEALLibrary>;
// A UMD module: Node hands its module.exports (the factory) over as the default export.
const factory = ((SealModule as unknown as { default?: SealFactory }).default ??
  SealModule) as unknown as SealFactory;

let loading: Promise<SEALLibrary> | undefined;

/** The SEAL library for this thread, instantiated once (compiling the WASM takes a few hundred ms). */
export function loadSeal(): Promise<SEALLibrary> {
  loading ??= factory();
  return loading;
}

/** A SEAL context for one preset, with what it was built from; `free()` releases all of it. */
export interface PresetContext {
  preset: HePreset;
  parms: EncryptionParameters;
  context: Context;
  free(): void;
}

/**
 * Builds the SEAL context for `preset` and checks that SEAL chose the preset's primes and yields its
 * parms_id, so a ciphertext under this context means exactly what the preset hash says.
 *
 * @throws HePresetError when the preset is plaintext or SEAL disagrees with it.
 */
export function presetContext(seal: SEALLibrary, preset: HePreset): PresetContext {
  if (preset.scheme === 'plaintext') throw new HePresetError('The plaintext preset has no SEAL context.');
  const parms = seal.EncryptionParameters(
    preset.scheme === 'bgv' ? seal.SchemeType.bgv : seal.SchemeType.ckks,
  );
  const n = preset.polyModulusDegree;
  parms.setPolyModulusDegree(n);
  const moduli = seal.CoeffModulus.Create(n, Int32Array.from(preset.coeffModulusBits));
  parms.setCoeffModulus(moduli);
  moduli.delete();
  if (preset.scheme === 'bgv') {
    const t = seal.Modulus(BigInt(preset.plainModulus));
    parms.setPlainModulus(t);
    t.delete();
  }
  const context = seal.Context(parms, true, seal.SecurityLevel.tc128);
  const free = () => {
    context.delete();
    parms.delete();
  };
  const problem = !context.parametersSet()
    ? `SEAL refuses the parameters of ${preset.name}`
    : [...parms.coeffModulus].map(String).join(',') !== preset.coeffModulus.join(',')
      ? `SEAL chose other primes for ${preset.name}`
      : parmsIdHex(context) !== preset.parmsId
        ? `SEAL computes another parms_id for ${preset.name}`
        : undefined;
  if (problem) {
    free();
    throw new HePresetError(problem);
  }
  return { preset, parms, context, free };
}

/** The parms_id of the level fresh ciphertexts are at, as the hex of its little-endian bytes. */
export function parmsIdHex(context: Context): string {
  const id = context.firstParmsId;
  const out = Buffer.alloc(32);
  id.values.forEach((v, i) => {
    out.writeBigUInt64LE(v, 8 * i);
  });
  id.delete();
  return out.toString('hex');
}

/**
 * A per-worker cache of preset contexts: building a SEAL context validates the preset against SEAL,
 * which is too slow to repeat per job. Contexts live as long as the worker.
 */
export function presetContextCache(seal: SEALLibrary): (preset: HePreset) => PresetContext {
  const contexts = new Map<string, PresetContext>();
  return (preset) => {
    const key = `${preset.name}/${preset.parmsId}`;
    let ctx = contexts.get(key);
    if (!ctx) {
      ctx = presetContext(seal, preset);
      contexts.set(key, ctx);
    }
    return ctx;
  };
}
