import type { ByteSource } from '@radfed/shared';

export type { ByteSource };

/**
 * How the coordinator combines site updates. An aggregator only ever adds: it folds one update into
 * a running sum, so memory stays O(model) whatever the number of sites. It never needs, and in the
 * encrypted implementation never has, a key that reveals an individual update.
 */
export interface Aggregator {
  /** Encoding name sites put in their upload header; anything else is refused. */
  readonly encoding: string;
  /** Exact size in bytes of one update for a model with `parameterCount` shared parameters. */
  updateBytes(parameterCount: number): number;
  /** Throws InvalidUpdateError when `update` is not a well-formed update; never mutates anything. */
  validate(update: Uint8Array, parameterCount: number): void;
  /**
   * Returns running sum + update; `sum` undefined means the first update of the round. Never
   * modifies its inputs, so a fold that throws leaves the running sum as it was. May run on worker
   * threads (the encrypted aggregator does), hence possibly a promise: callers await it.
   */
  fold(sum: Uint8Array | undefined, update: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /**
   * What the round engine runs: running sum + update with neither held whole. Both are read in
   * chunks, the update is checked as it is read (the refusals of `validate` and `fold`), and the new
   * sum goes to `write` in order, chunk by chunk; memory is a few chunks whatever the model size.
   * When it throws, the caller discards what `write` received.
   */
  foldStream(
    sum: ByteSource | undefined,
    update: ByteSource,
    parameterCount: number,
    write: (chunk: Uint8Array) => Promise<void>,
  ): Promise<void>;
}
