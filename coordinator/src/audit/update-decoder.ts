import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** An exported update, decoded: its bytes and their SHA-256 (hex). */
export interface DecodedUpdate {
  bytes: Uint8Array;
  sha256: string;
}

interface Reply {
  id: number;
  /** Bytes decoded into the buffer's `out`. */
  length?: number;
  sha256: string;
}

interface Thread {
  worker: Worker;
  pending: number;
  /** Buffers this worker holds already, by id, and the version (growth) it holds of each. */
  known: Map<number, number>;
}

/**
 * Memory shared with the workers for one update in flight: its base64 (`text`) and what it decodes
 * to (`out`). Shared once with each worker and reused from update to update, so that handing an
 * update over moves a few numbers, not megabytes: moving (transferring) buffers back and forth
 * counts as fresh external memory on each arrival, for which V8 collects garbage again and again.
 */
interface Buffers {
  id: number;
  /** Bumped whenever the buffers are replaced by larger ones, so workers know to take the new ones. */
  version: number;
  text: SharedArrayBuffer;
  out: SharedArrayBuffer;
}

const WORKER = new URL('./update-worker.mjs', import.meta.url);

/**
 * Decodes exported updates (base64) and hashes them on worker threads, so that the thread reading
 * the export only splits lines and hands them on: decoding and hashing are most of a verifier's work
 * per byte, and the garbage of multi-megabyte strings stays on the workers' heaps. Updates are
 * decoded into shared buffers reused from update to update (see {@link Buffers}). Workers start on
 * first use and end with {@link close}.
 */
export class UpdateDecoder {
  private readonly threads: Thread[] = [];
  private readonly waiting = new Map<number, { resolve(r: Reply): void; reject(e: Error): void }>();
  private nextId = 1;
  /** Buffers not in use, to decode the next updates in. */
  private readonly free: Buffers[] = [];
  /** Buffers holding a decoded update, by the memory its bytes are in (see {@link release}). */
  private readonly inUse = new Map<ArrayBufferLike, Buffers>();
  private buffersMade = 0;

  /** @param size worker threads (default: the cores available, at most 4). */
  constructor(private readonly size = Math.max(1, Math.min(4, availableParallelism()))) {}

  /**
   * Decodes one update's base64 and hashes the result. Base64 given as bytes is copied before this
   * returns its promise, so the caller may overwrite them at once. The decoded bytes stay valid until
   * given back with {@link release}.
   */
  async decode(base64: Uint8Array | string): Promise<DecodedUpdate> {
    const buffers = this.buffersFor(base64.length);
    const thread = this.leastBusy();
    const shared = this.share(thread, buffers);
    let message: object;
    if (typeof base64 === 'string') {
      message = { base64, buffers: buffers.id, ...shared };
    } else {
      new Uint8Array(buffers.text).set(base64);
      message = { textBytes: base64.length, buffers: buffers.id, ...shared };
    }
    let reply: Reply;
    try {
      reply = await this.run(thread, message);
    } catch (err) {
      this.free.push(buffers);
      throw err;
    }
    const bytes = new Uint8Array(buffers.out, 0, reply.length);
    this.inUse.set(buffers.out, buffers);
    return { bytes, sha256: reply.sha256 };
  }

  /** Gives a decoded update's memory back for the next one, once nothing reads it any more. */
  release(update: DecodedUpdate): void {
    const buffers = this.inUse.get(update.bytes.buffer);
    if (!buffers) return;
    this.inUse.delete(update.bytes.buffer);
    this.free.push(buffers);
  }

  /** SHA-256 (hex) of `bytes`, which are moved to the worker when they fill their ArrayBuffer. */
  async sha256(bytes: Uint8Array): Promise<string> {
    const owned =
      bytes.buffer instanceof ArrayBuffer &&
      bytes.byteOffset === 0 &&
      bytes.buffer.byteLength === bytes.byteLength;
    const thread = this.leastBusy();
    return (await this.run(thread, { bytes }, owned ? [bytes.buffer as ArrayBuffer] : [])).sha256;
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
    this.threads.length = 0;
  }

  private run(thread: Thread, message: object, moved: ArrayBuffer[] = []): Promise<Reply> {
    const id = this.nextId++;
    thread.pending++;
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(id, {
        resolve: (r) => {
          thread.pending--;
          resolve(r);
        },
        reject,
      });
      thread.worker.postMessage({ id, ...message }, moved);
    });
  }

  /** Free buffers large enough for `base64Length` characters of base64: reused, grown or new. */
  private buffersFor(base64Length: number): Buffers {
    const outBytes = Math.floor((base64Length * 3) / 4);
    const fit = this.free.findIndex((b) => b.text.byteLength >= base64Length);
    if (fit >= 0) return this.free.splice(fit, 1)[0]!;
    const grow = this.free.pop();
    const buffers = grow ?? { id: this.buffersMade++, version: 0, text: undefined!, out: undefined! };
    buffers.version++;
    buffers.text = new SharedArrayBuffer(base64Length);
    buffers.out = new SharedArrayBuffer(outBytes);
    return buffers;
  }

  /** The buffers to send with a message to `thread`: none when it holds this version already. */
  private share(thread: Thread, buffers: Buffers): { text?: SharedArrayBuffer; out?: SharedArrayBuffer } {
    if (thread.known.get(buffers.id) === buffers.version) return {};
    thread.known.set(buffers.id, buffers.version);
    return { text: buffers.text, out: buffers.out };
  }

  private leastBusy(): Thread {
    if (this.threads.length < this.size) {
      const thread: Thread = { worker: new Worker(WORKER), pending: 0, known: new Map() };
      thread.worker.on('message', (reply: Reply) => {
        const waiter = this.waiting.get(reply.id);
        this.waiting.delete(reply.id);
        waiter?.resolve(reply);
      });
      thread.worker.on('error', (err) => {
        for (const w of this.waiting.values()) w.reject(err);
        this.waiting.clear();
      });
      this.threads.push(thread);
      return thread;
    }
    return this.threads.reduce((a, b) => (b.pending < a.pending ? b : a));
  }
}
