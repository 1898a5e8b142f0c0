/**
 * Progress of local training for a person watching: a per-epoch bar with images/s and loss,
 * redrawn in place on a terminal, or one plain line per epoch when the output is a file or pipe.
 */
import type { TrainProgress } from './trainer.js';

export interface ProgressOptions {
  /** Where to draw; default process.stderr. */
  stream?: NodeJS.WriteStream | { write(text: string): unknown; isTTY?: boolean; columns?: number };
  /** Prefix of every line, e.g. "round 3". */
  label?: string;
}

const BAR_WIDTH = 24;

/** A TrainProgress callback that draws the bar (TTY) or writes a line per finished epoch. */
export function progressReporter(options: ProgressOptions = {}): (progress: TrainProgress) => void {
  const stream = options.stream ?? process.stderr;
  const prefix = options.label ? `${options.label}: ` : '';
  return (p) => {
    const stats = `${p.imagesPerSecond.toFixed(1)} images/s, loss ${p.loss.toFixed(4)}`;
    if (stream.isTTY) {
      const filled = Math.round((p.batch / p.batches) * BAR_WIDTH);
      const bar = `${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}`;
      const line = `${prefix}epoch ${p.epoch}/${p.epochs} [${bar}] ${p.batch}/${p.batches} ${stats}`;
      stream.write(`\r${line}\x1b[K${p.batch === p.batches ? '\n' : ''}`);
    } else if (p.batch === p.batches) {
      stream.write(`${prefix}epoch ${p.epoch}/${p.epochs} done: ${p.batches} steps, ${stats}\n`);
    }
  };
}
