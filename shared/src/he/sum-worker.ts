/**
 * Worker thread for the coordinator side: adds ciphertexts and checks public parameters. It is given
 * public parameters only and has no operation that takes, makes or uses a secret key.
 */
import { HeFormatError } from '../errors.js';
import { FRAME_HEADER_BYTES, frameBytes, payloadBytes, writeFrameHeader } from './framing.js';
import type { HePreset } from './presets.js';
import { loadSeal, type PresetContext, presetContext } from './seal.js';
import { serveJobs } from './serve.js';

/** Arguments of the `fold` operation: frames [from, to) of sum + update into `output`. */
export interface FoldJob {
  op: 'fold';
  preset: HePreset;
  presetHash: string;
  keyId: string;
  parameterCount: number;
  input: SharedArrayBuffer;
  /** Byte offset of the running sum's frames in `input`, or -1 for the first update of a round. */
  sumOffset: number;
  updateOffset: number;
  output: SharedArrayBuffer;
  from: number;
  to: number;
}

const seal = await loadSeal();
const contexts = new Map<string, PresetContext>();

function contextFor(preset: HePreset): PresetContext {
  const key = `${preset.name}/${preset.parmsId}`;
  let ctx = contexts.get(key);
  if (!ctx) {
    ctx = presetContext(seal, preset);
    contexts.set(key, ctx);
  }
  return ctx;
}

serveJobs({
  fold: async (raw) => {
    const job = raw as unknown as FoldJob;
    const { preset } = job;
    const { context } = contextFor(preset);
    const update = frameBytes(preset, 'update');
    const aggregate = frameBytes(preset, 'aggregate');
    const updatePayload = payloadBytes(preset, 'update');
    const sumPayload = payloadBytes(preset, 'aggregate');
    const count = Math.ceil(job.parameterCount / preset.slotsPerCiphertext);
    const input = new Uint8Array(job.input);
    const output = new Uint8Array(job.output);
    const evaluator = seal.Evaluator(context);
    const sum = seal.CipherText();
    const next = seal.CipherText();
    try {
      for (let i = job.from; i < job.to; i++) {
        const u = job.updateOffset + i * update + FRAME_HEADER_BYTES;
        next.loadArray(context, input.subarray(u, u + updatePayload));
        let bytes: Uint8Array;
        if (job.sumOffset >= 0) {
          const s = job.sumOffset + i * aggregate + FRAME_HEADER_BYTES;
          sum.loadArray(context, input.subarray(s, s + sumPayload));
          evaluator.add(sum, next, sum);
          bytes = sum.saveArray(seal.ComprModeType.none);
        } else {
          bytes = next.saveArray(seal.ComprModeType.none);
        }
        if (bytes.byteLength !== sumPayload) {
          throw new HeFormatError(
            'corrupt',
            `ciphertext ${i} summed to ${bytes.byteLength} bytes, not ${sumPayload}`,
          );
        }
        const at = i * aggregate;
        writeFrameHeader(output, at, {
          kind: 'aggregate',
          presetHash: job.presetHash,
          keyId: job.keyId,
          index: i,
          count,
          slots: Math.min(preset.slotsPerCiphertext, job.parameterCount - i * preset.slotsPerCiphertext),
          payloadBytes: sumPayload,
        });
        output.set(bytes, at + FRAME_HEADER_BYTES);
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
    return { result: job.to - job.from };
  },

  sealParameters: async (raw) => {
    const { preset } = raw as unknown as { preset: HePreset };
    const bytes = contextFor(preset).parms.saveArray(seal.ComprModeType.none);
    return { result: bytes, transfer: [bytes.buffer as ArrayBuffer] };
  },
});
