import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** An exported update, decoded: its bytes and their SHA-256 (hex). */
export interface DecodedUpdate {
  bytes: Uint8Array;
  sha256: string;
}

interface Reply {
  id: number;
  bytes?: Uint8Array;
  sha256: string;
}

interface Slot {
  worker: Worker;
  pending: number;
}

const WORKER = new URL('./update-worker.mjs', import.meta.url);

/** Released buffers kept for reuse: a few more than the updates decoded or folding at once. */
const MAX_SPARE = 16;

/**
 * Decodes exported updates (base64) and hashes them on worker threads, so that the thread reading
 * the export only splits lines and hands them on: decoding and hashing are most of a verifier's work
 * per byte, and the garbage of multi-megabyte strings stays on the workers' heaps. Workers start on
 * first use and end with {@link close}.
 */
export class UpdateDecoder {
  private readonly slots: Slot[] = [];
  private readonly waiting = new Map<number, { resolve(r: Reply): void; reject(e: Error): void }>();
  private nextId = 1;
  /** Buffers of released updates, to decode the next ones into. */
  private readonly spare: ArrayBuffer[] = [];

  /** @param threads worker threads (default: the cores available, at most 4). */
  constructor(private readonly threads = Math.max(1, Math.min(4, availableParallelism()))) {}

  /**
   * Decodes one update's base64 and hashes the result. Base64 given as bytes has its whole
   * ArrayBuffer moved to the worker (so neither it nor anything else in that buffer is usable here).
   */
  async decode(base64: Uint8Array | string): Promise<DecodedUpdate> {
    const into = this.spareFor(Math.floor((base64.length * 3) / 4));
    const move = typeof base64 === 'string' ? [into] : [into, base64.buffer as ArrayBuffer];
    const reply = await this.run({ base64, into }, move);
    return { bytes: reply.bytes!, sha256: reply.sha256 };
  }

  /**
   * Gives a decoded update's memory back for the next one, once nothing reads it any more: buffers
   * of multi-megabyte updates are reused rather than allocated (and collected) per update.
   */
  release(update: DecodedUpdate): void {
    if (this.spare.length < MAX_SPARE) this.spare.push(update.bytes.buffer as ArrayBuffer);
  }

  /** SHA-256 (hex) of `bytes`, which are moved to the worker when they fill their ArrayBuffer. */
  async sha256(bytes: Uint8Array): Promise<string> {
    const owned = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength;
    return (await this.run({ bytes }, owned ? [bytes.buffer as ArrayBuffer] : [])).sha256;
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }

  private run(message: object, moved: ArrayBuffer[]): Promise<Reply> {
    const slot = this.leastBusy();
    const id = this.nextId++;
    slot.pending++;
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(id, {
        resolve: (r) => {
          slot.pending--;
          resolve(r);
        },
        reject,
      });
      slot.worker.postMessage({ id, ...message }, moved);
    });
  }

  /** A buffer of at least `bytes`: a spare one if one is large enough, else a new one. */
  private spareFor(bytes: number): ArrayBuffer {
    const at = this.spare.findIndex((b) => b.byteLength >= bytes);
    if (at >= 0) return this.spare.splice(at, 1)[0]!;
    return new ArrayBuffer(bytes);
  }

  private leastBusy(): Slot {
    if (this.slots.length < this.threads) {
      const slot: Slot = { worker: new Worker(WORKER), pending: 0 };
      slot.worker.on('message', (reply: Reply) => {
        const waiter = this.waiting.get(reply.id);
        this.waiting.delete(reply.id);
        waiter?.resolve(reply);
      });
      slot.worker.on('error', (err) => {
        for (const w of this.waiting.values()) w.reject(err);
        this.waiting.clear();
      });
      this.slots.push(slot);
      return slot;
    }
    return this.slots.reduce((a, b) => (b.pending < a.pending ? b : a));
  }
}
