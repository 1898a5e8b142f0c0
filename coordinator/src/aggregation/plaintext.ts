import { InvalidUpdateError } from '../errors.js';
import type { Aggregator, ByteSource } from './aggregator.js';

/** Values per chunk of a streamed fold (512 KiB of float64). */
const CHUNK_VALUES = 65536;

/**
 * Plaintext weighted FedAvg: each site uploads n_i * w_i as little-endian float64 (8 bytes a
 * parameter, the same wire size as the encrypted default), the coordinator adds them, and sites
 * divide the downloaded sum by sum(n_i). The coordinator sees the weights here; the encrypted
 * aggregator replaces this so it never does.
 */
export class PlaintextAggregator implements Aggregator {
  readonly encoding = 'plain-f64-weighted';

  updateBytes(parameterCount: number): number {
    return parameterCount * 8;
  }

  validate(update: Uint8Array, parameterCount: number): void {
    this.checkLength(update.byteLength, parameterCount);
    checkFinite(asFloat64(update), 0);
  }

  async foldStream(
    sum: ByteSource | undefined,
    update: ByteSource,
    parameterCount: number,
    write: (chunk: Uint8Array) => Promise<void>,
  ): Promise<void> {
    this.checkLength(update.bytes, parameterCount);
    const u = new Float64Array(Math.min(CHUNK_VALUES, parameterCount));
    const s = new Float64Array(u.length);
    for (let from = 0; from < parameterCount; from += CHUNK_VALUES) {
      const n = Math.min(CHUNK_VALUES, parameterCount - from);
      const values = u.subarray(0, n);
      await update.readAt(from * 8, new Uint8Array(values.buffer, 0, n * 8));
      checkFinite(values, from);
      if (sum) {
        const sums = s.subarray(0, n);
        await sum.readAt(from * 8, new Uint8Array(sums.buffer, 0, n * 8));
        for (let i = 0; i < n; i++) values[i] = sums[i]! + values[i]!;
      }
      await write(new Uint8Array(values.buffer, 0, n * 8));
    }
  }

  private checkLength(bytes: number, parameterCount: number): void {
    if (bytes !== this.updateBytes(parameterCount)) {
      throw new InvalidUpdateError(
        `The update holds ${bytes} bytes but this federation's model needs ${this.updateBytes(parameterCount)} (${parameterCount} float64 values); check the agent runs the federation's model spec.`,
      );
    }
  }

  fold(sum: Uint8Array | undefined, update: Uint8Array): Uint8Array {
    const out = new Float64Array(update.byteLength / 8);
    const u = asFloat64(update);
    if (sum) {
      const s = asFloat64(sum);
      for (let i = 0; i < out.length; i++) out[i] = s[i]! + u[i]!;
    } else {
      out.set(u);
    }
    return new Uint8Array(out.buffer);
  }
}

/** Throws InvalidUpdateError naming the first value (numbered from `offset`) that is not finite. */
function checkFinite(values: Float64Array, offset: number): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) {
      throw new InvalidUpdateError(
        `The update's value ${offset + i} is not a finite number; the local training diverged, lower the learning rate.`,
      );
    }
  }
}

/** A float64 view of little-endian bytes, copying only when the input is misaligned. */
export function asFloat64(bytes: Uint8Array): Float64Array {
  if (bytes.byteOffset % 8 === 0)
    return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
  return new Float64Array(bytes.slice().buffer);
}
