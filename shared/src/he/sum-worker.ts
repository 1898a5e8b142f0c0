/**
 * Worker thread for the coordinator side: adds ciphertexts (plain JavaScript, see fold.ts) and loads
 * SEAL only to check published public parameters. It is given public parameters only and has no
 * operation that takes, makes or uses a secret key.
 */

import { foldRange } from './fold.js';
import { aggregateFrameBytes, updateFrameBytes } from './framing.js';
import type { HePreset } from './presets.js';
import { loadSeal, type PresetContext, presetContextCache } from './seal.js';
import { serveJobs } from './serve.js';

/**
 * Arguments of the `fold` operation: ciphertexts [from, to) of a running sum and updates, laid out in
 * `input` as the sum's frames for that range (if any) and then each update's, added into aggregate
 * frames written to `output`. Both buffers are moved here and moved back, so no copy lingers in this
 * thread waiting for its garbage collector.
 */
export interface FoldJob {
  op: 'fold';
  preset: HePreset;
  presetHash: string;
  keyId: string;
  parameterCount: number;
  /** The chunk's bytes are the first `inputBytes` of `input` (buffers are reused, so may be longer). */
  input: ArrayBuffer;
  inputBytes: number;
  /** How many updates the running sum at the start of `input` holds (0: no sum, first update). */
  sumContributors: number;
  /** How many updates follow. */
  updates: number;
  output: ArrayBuffer;
  from: number;
  to: number;
}

/** SEAL, loaded on first need: folding does not use it, so a folding worker never pays its heap. */
let contextFor: ((preset: HePreset) => PresetContext) | undefined;
async function sealContext(preset: HePreset) {
  const seal = await loadSeal();
  contextFor ??= presetContextCache(seal);
  return { seal, ...contextFor(preset) };
}

serveJobs({
  fold: async (raw) => {
    const job = raw as unknown as FoldJob;
    const { preset } = job;
    const span = job.to - job.from;
    const input = new Uint8Array(job.input, 0, job.inputBytes);
    const sumBytes = job.sumContributors > 0 ? span * aggregateFrameBytes(preset, job.sumContributors) : 0;
    const upBytes = span * updateFrameBytes(preset);
    foldRange({
      preset,
      presetHash: job.presetHash,
      keyId: job.keyId,
      parameterCount: job.parameterCount,
      sum: sumBytes > 0 ? input.subarray(0, sumBytes) : undefined,
      sumContributors: job.sumContributors,
      updates: Array.from({ length: job.updates }, (_, k) =>
        input.subarray(sumBytes + k * upBytes, sumBytes + (k + 1) * upBytes),
      ),
      out: new Uint8Array(
        job.output,
        0,
        span * aggregateFrameBytes(preset, job.sumContributors + job.updates),
      ),
      from: job.from,
      to: job.to,
    });
    return { result: { output: job.output, input: job.input }, transfer: [job.output, job.input] };
  },

  sealParameters: async (raw) => {
    const { preset } = raw as unknown as { preset: HePreset };
    const { seal, parms } = await sealContext(preset);
    const bytes = parms.saveArray(seal.ComprModeType.none);
    return { result: bytes, transfer: [bytes.buffer as ArrayBuffer] };
  },
});
