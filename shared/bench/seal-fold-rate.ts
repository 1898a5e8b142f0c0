/**
 * Calibration for `pnpm bench:he`: parameters per second one SEAL instance (this thread's) loads (so
 * expands the seeds of) and adds an update's ciphertexts, with none of the framing, copying or
 * serialising around it: what folding would cost if the coordinator expanded seeds itself. It loads
 * no secret key; it lives here, not in the coordinator's HE worker, because only the benchmark asks.
 */
import { FRAME_HEADER_BYTES, updateFrameBytes, updatePayloadBytes } from '../src/he/framing.js';
import type { HePreset } from '../src/he/presets.js';
import { loadSeal, presetContext } from '../src/he/seal.js';

/**
 * Loads and adds the ciphertexts of `update` (a checked update of `parameterCount` parameters)
 * `repeats` times; returns parameters per second.
 */
export async function sealFoldRate(
  preset: HePreset,
  update: Uint8Array,
  parameterCount: number,
  repeats = 3,
): Promise<number> {
  const count = Math.ceil(parameterCount / preset.slotsPerCiphertext);
  const seal = await loadSeal();
  const ctx = presetContext(seal, preset);
  const { context } = ctx;
  const frame = updateFrameBytes(preset);
  const size = updatePayloadBytes(preset);
  const payload = (c: number) =>
    update.subarray(c * frame + FRAME_HEADER_BYTES, c * frame + FRAME_HEADER_BYTES + size);
  const evaluator = seal.Evaluator(context);
  const sum = seal.CipherText();
  const next = seal.CipherText();
  try {
    sum.loadArray(context, payload(0));
    const started = performance.now();
    for (let r = 0; r < repeats; r++) {
      for (let c = 0; c < count; c++) {
        next.loadArray(context, payload(c));
        evaluator.add(sum, next, sum);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    return (count * preset.slotsPerCiphertext * repeats) / seconds;
  } finally {
    next.delete();
    sum.delete();
    evaluator.delete();
    ctx.free();
  }
}
