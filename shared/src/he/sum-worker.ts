/**
 * Worker thread for the coordinator side: adds ciphertexts and checks public parameters. It is given
 * public parameters only and has no operation that takes, makes or uses a secret key.
 */
import { HeFormatError } from '../errors.js';
import { FRAME_HEADER_BYTES, frameBytes, payloadBytes, writeFrameHeader } from './framing.js';
import type { HePreset } from './presets.js';
import { loadSeal, presetContextCache } from './seal.js';
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
  input: ArrayBuffer;
  /** Whether `input` starts with the running sum's frames (false for the first update of a round). */
  withSum: boolean;
  /** How many updates follow. */
  updates: number;
  output: ArrayBuffer;
  from: number;
  to: number;
}

const seal = await loadSeal();

const contextFor = presetContextCache(seal);

serveJobs({
  fold: async (raw) => {
    const job = raw as unknown as FoldJob;
    const { preset } = job;
    const { context } = contextFor(preset);
    const span = job.to - job.from;
    const update = frameBytes(preset, 'update');
    const aggregate = frameBytes(preset, 'aggregate');
    const updatePayload = payloadBytes(preset, 'update');
    const sumPayload = payloadBytes(preset, 'aggregate');
    const count = Math.ceil(job.parameterCount / preset.slotsPerCiphertext);
    const input = new Uint8Array(job.input);
    const output = new Uint8Array(job.output);
    const updatesAt = job.withSum ? span * aggregate : 0;
    const evaluator = seal.Evaluator(context);
    const sum = seal.CipherText();
    const next = seal.CipherText();
    try {
      for (let c = 0; c < span; c++) {
        // Ciphertext by ciphertext, so this thread's WASM heap holds two whatever the model size.
        const i = job.from + c;
        let first = 0;
        if (job.withSum) {
          const s = c * aggregate + FRAME_HEADER_BYTES;
          sum.loadArray(context, input.subarray(s, s + sumPayload));
        } else {
          const u = updatesAt + c * update + FRAME_HEADER_BYTES;
          sum.loadArray(context, input.subarray(u, u + updatePayload));
          first = 1;
        }
        for (let k = first; k < job.updates; k++) {
          const u = updatesAt + k * span * update + c * update + FRAME_HEADER_BYTES;
          next.loadArray(context, input.subarray(u, u + updatePayload));
          evaluator.add(sum, next, sum);
        }
        const bytes = sum.saveArray(seal.ComprModeType.none);
        if (bytes.byteLength !== sumPayload) {
          throw new HeFormatError(
            'corrupt',
            `ciphertext ${i} summed to ${bytes.byteLength} bytes, not ${sumPayload}`,
          );
        }
        writeFrameHeader(output, c * aggregate, {
          kind: 'aggregate',
          presetHash: job.presetHash,
          keyId: job.keyId,
          index: i,
          count,
          slots: Math.min(preset.slotsPerCiphertext, job.parameterCount - i * preset.slotsPerCiphertext),
          payloadBytes: sumPayload,
        });
        output.set(bytes, c * aggregate + FRAME_HEADER_BYTES);
      }
    } catch (err) {
      if (err instanceof HeFormatError || /Aborted\(/.test(String((err as Error).message))) throw err;
      // SEAL refused a ciphertext the framing checks let through (e.g. a value it re-checks).
      throw new HeFormatError('corrupt', `SEAL refused a ciphertext: ${(err as Error).message}`);
    } finally {
      next.delete();
      sum.delete();
      evaluator.delete();
    }
    return { result: { output: job.output }, transfer: [job.output, job.input] };
  },

  sealCost: async (raw) => {
    // Calibration: SEAL alone loading and adding `count` update ciphertexts, `repeats` times.
    const job = raw as unknown as { preset: HePreset; input: ArrayBuffer; count: number; repeats: number };
    const { context } = contextFor(job.preset);
    const input = new Uint8Array(job.input);
    const frame = frameBytes(job.preset, 'update');
    const size = payloadBytes(job.preset, 'update');
    const evaluator = seal.Evaluator(context);
    const sum = seal.CipherText();
    const next = seal.CipherText();
    sum.loadArray(context, input.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + size));
    const started = performance.now();
    for (let r = 0; r < job.repeats; r++) {
      for (let c = 0; c < job.count; c++) {
        next.loadArray(
          context,
          input.subarray(c * frame + FRAME_HEADER_BYTES, c * frame + FRAME_HEADER_BYTES + size),
        );
        evaluator.add(sum, next, sum);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    next.delete();
    sum.delete();
    evaluator.delete();
    return { result: seconds, transfer: [job.input] };
  },

  sealParameters: async (raw) => {
    const { preset } = raw as unknown as { preset: HePreset };
    const bytes = contextFor(preset).parms.saveArray(seal.ComprModeType.none);
    return { result: bytes, transfer: [bytes.buffer as ArrayBuffer] };
  },
});
