import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** An exported update, decoded: its bytes and their SHA-256 (hex). */
export interface DecodedUpdate {
  bytes: Uint8Array;
  sha256: string;
}

interface Reply {
  id: number;
  /** The buffers' `out`, moved back, and how many bytes were decoded into it. */
  out?: ArrayBuffer;
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
 * Memory for one update in flight, reused from update to update: its base64 (`text`), shared once
 * with each worker, so that handing an update over copies it into memory the worker holds already
 * rather than allocating; and what it decodes to (`out`), moved to the worker and back. `out` is not
 * shared: the fold copies updates from it at offsets no word alignment holds for, which for shared
 * memory means byte by byte.
 */
interface Buffers {
  id: number;
  /** Bumped whenever `text` is replaced by a larger one, so workers know to take the new one. */
  version: number;
  text: SharedArrayBuffer;
  out: ArrayBuffer;
}

const WORKER = new URL('./update-worker.mjs', import.meta.url);

/** Base64 is copied into its shared buffer at its source's offset modulo this (see decode). */
const TEXT_ALIGN = 8;

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
      // Copied to the same alignment as the source: a copy into shared memory goes word by word
      // only when both sides are equally aligned, else byte by byte (five times slower).
      const at = base64.byteOffset % TEXT_ALIGN;
      new Uint8Array(buffers.text).set(base64, at);
      message = { textStart: at, textBytes: base64.length, buffers: buffers.id, ...shared };
    }
    // Without a reply the worker failed, and `out` with it: these buffers are not reused.
    const reply = await this.run(thread, { ...message, out: buffers.out }, [buffers.out]);
    buffers.out = reply.out!;
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
    const textBytes = base64Length + TEXT_ALIGN;
    const fit = this.free.findIndex((b) => b.text.byteLength >= textBytes && b.out.byteLength >= outBytes);
    if (fit >= 0) return this.free.splice(fit, 1)[0]!;
    const grow = this.free.pop();
    const buffers = grow ?? { id: this.buffersMade++, version: 0, text: undefined!, out: undefined! };
    buffers.version++;
    buffers.text = new SharedArrayBuffer(textBytes);
    buffers.out = new ArrayBuffer(outBytes);
    return buffers;
  }

  /** The shared buffer to send with a message to `thread`: none when it holds this version already. */
  private share(thread: Thread, buffers: Buffers): { text?: SharedArrayBuffer } {
    if (thread.known.get(buffers.id) === buffers.version) return {};
    thread.known.set(buffers.id, buffers.version);
    return { text: buffers.text };
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
