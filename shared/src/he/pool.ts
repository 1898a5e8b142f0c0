/**
 * A pool of worker threads, each with its own SEAL instance. HE work is sharded by ciphertext index
 * across the pool: each worker streams its shard one ciphertext at a time, so a worker's WASM heap
 * holds a few ciphertexts whatever the model size (one SEAL instance stays far below its ~3.9 GiB
 * limit) and a model's work spreads over every core.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { HeFormatError, type HeFormatReason, HeKeyError, HeWorkerError } from '../errors.js';

/** A job for a worker: `op` picks the handler, the rest are its arguments. */
export interface WorkerJob {
  op: string;
  [arg: string]: unknown;
}

/** What a worker posts back for job `id`. */
export type WorkerReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { name: string; message: string; reason?: string }; fatal: boolean };

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve(v: unknown): void; reject(e: Error): void }>;
}

/** Where worker threads are started from: a bootstrap that can load TypeScript, then the module. */
const BOOTSTRAP = new URL('./worker-bootstrap.mjs', import.meta.url);

/**
 * Threads an HE pool gets by default: the cores available, at most 8. Deployables pass their own
 * setting (`RADFED_HE_THREADS`, parsed once by each one's config schema).
 */
export function defaultHeThreads(): number {
  return Math.max(1, Math.min(8, availableParallelism()));
}

/**
 * Runs jobs on `size` worker threads loaded from `module` (a module URL whose default side effect is
 * to serve jobs, see `serveJobs`). Workers start on first use, keep the process alive only while they
 * have work, and are replaced when one crashes or its SEAL instance aborts.
 */
export class HePool {
  private readonly slots: (Slot | undefined)[];
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly module: URL,
    readonly size: number = defaultHeThreads(),
  ) {
    this.slots = Array.from({ length: size }, () => undefined);
  }

  /** Runs `job` on the least busy worker; `transfer` lists buffers moved rather than copied. */
  run<T, J extends { op: string } = { op: string }>(job: J, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.closed) return Promise.reject(new HeWorkerError('The HE worker pool is closed.'));
    let best = 0;
    let load = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.size; i++) {
      const n = this.slots[i]?.pending.size ?? 0;
      if (n < load) {
        best = i;
        load = n;
      }
    }
    const slot = this.slot(best);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      slot.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      slot.worker.ref();
      slot.worker.postMessage({ id, job }, transfer);
    });
  }

  /**
   * Runs `count` items as contiguous chunks of at most `chunk` items, `shard(from, to)` each, with at
   * most two chunks in flight per worker: every core stays busy while the memory held for chunks in
   * transit stays bounded whatever `count` is. Resolves with the results in chunk order.
   */
  async chunks<T>(
    count: number,
    chunk: number,
    shard: (from: number, to: number) => Promise<T>,
  ): Promise<T[]> {
    const ranges: [number, number][] = [];
    for (let from = 0; from < count; from += chunk) ranges.push([from, Math.min(count, from + chunk)]);
    const results: T[] = new Array(ranges.length);
    let next = 0;
    const lane = async () => {
      while (next < ranges.length) {
        const i = next++;
        const [from, to] = ranges[i]!;
        results[i] = await shard(from, to);
      }
    };
    await Promise.all(Array.from({ length: Math.min(ranges.length, 2 * this.size) }, lane));
    return results;
  }

  /** Stops every worker; pending jobs fail with HeWorkerError. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots.map(async (slot, i) => {
        if (!slot) return;
        this.slots[i] = undefined;
        this.fail(slot, new HeWorkerError('The HE worker pool was closed.'));
        await slot.worker.terminate();
      }),
    );
  }

  private slot(i: number): Slot {
    const existing = this.slots[i];
    if (existing) return existing;
    const worker = new Worker(BOOTSTRAP, { workerData: { module: this.module.href } });
    const slot: Slot = { worker, pending: new Map() };
    worker.unref();
    worker.on('message', (reply: WorkerReply) => {
      const waiter = slot.pending.get(reply.id);
      if (!waiter) return;
      slot.pending.delete(reply.id);
      if (slot.pending.size === 0) worker.unref();
      if (reply.ok) waiter.resolve(reply.result);
      else {
        waiter.reject(rebuild(reply.error));
        // An aborted SEAL instance answers nothing correctly again: replace the thread.
        if (reply.fatal) this.retire(i, slot, new HeWorkerError('An HE worker aborted; it was replaced.'));
      }
    });
    worker.on('error', (err) =>
      this.retire(i, slot, new HeWorkerError(`An HE worker failed: ${err.message}`, { cause: err })),
    );
    worker.on('exit', (code) =>
      this.retire(i, slot, new HeWorkerError(`An HE worker exited (code ${code}).`)),
    );
    this.slots[i] = slot;
    return slot;
  }

  private retire(i: number, slot: Slot, err: HeWorkerError): void {
    if (this.slots[i] === slot) this.slots[i] = undefined;
    this.fail(slot, err);
    void slot.worker.terminate().catch(() => undefined);
  }

  private fail(slot: Slot, err: Error): void {
    for (const waiter of slot.pending.values()) waiter.reject(err);
    slot.pending.clear();
  }
}

/** Errors cross the thread boundary as plain objects; this restores the HE error classes. */
function rebuild(e: { name: string; message: string; reason?: string }): Error {
  if (e.name === 'HeFormatError')
    return new HeFormatError((e.reason ?? 'corrupt') as HeFormatReason, e.message);
  if (e.name === 'HeKeyError') return new HeKeyError(e.message);
  return new HeWorkerError(`${e.name}: ${e.message}`);
}
