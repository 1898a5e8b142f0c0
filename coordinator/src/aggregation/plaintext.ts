import { InvalidUpdateError } from '../errors.js';
import type { Aggregator } from './aggregator.js';

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
    if (update.byteLength !== this.updateBytes(parameterCount)) {
      throw new InvalidUpdateError(
        `The update holds ${update.byteLength} bytes but this federation's model needs ${this.updateBytes(parameterCount)} (${parameterCount} float64 values); check the agent runs the federation's model spec.`,
      );
    }
    const values = asFloat64(update);
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!)) {
        throw new InvalidUpdateError(
          `The update's value ${i} is not a finite number; the local training diverged, lower the learning rate.`,
        );
      }
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

/** A float64 view of little-endian bytes, copying only when the input is misaligned. */
export function asFloat64(bytes: Uint8Array): Float64Array {
  if (bytes.byteOffset % 8 === 0)
    return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
  return new Float64Array(bytes.slice().buffer);
}
