/**
 * Decoding under a time and memory bound. Codecs run in a worker thread: a file whose decoding
 * outlives `timeoutMs` has its thread terminated (a hung codec cannot be interrupted any other
 * way) and is skipped with that reason; a thread that dies (e.g. out of memory under its heap
 * limit) costs that one file too. A fresh thread takes over for the next file.
 */
import { Worker } from 'node:worker_threads';
import type { DecodedFile, DecodeOptions } from './decode.js';

export interface DecodeRequest {
  id: number;
  bytes: Uint8Array;
  path: string;
  options: DecodeOptions;
}

export type DecodeResponse = { id: number; decoded: DecodedFile } | { id: number; reason: string };

/** V8 heap of the decoder thread, in MiB (pixel buffers live outside it and are bounded by size checks). */
const DECODER_HEAP_MIB = 512;

export class DecodeSandbox {
  private worker: Promise<Worker> | undefined;
  private nextId = 0;

  constructor(private readonly timeoutMs: number) {}

  /** Decodes one file in the thread; `{ reason }` when it yields nothing, times out or crashes. */
  async decode(
    bytes: Uint8Array,
    path: string,
    options: DecodeOptions,
  ): Promise<DecodedFile | { reason: string }> {
    const worker = await this.start();
    const id = this.nextId++;
    return new Promise((resolve) => {
      const settle = (result: DecodedFile | { reason: string }) => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        worker.off('error', onError);
        resolve(result);
      };
      const restart = (reason: string) => {
        this.worker = undefined;
        void worker.terminate();
        settle({ reason });
      };
      const onMessage = (response: DecodeResponse) => {
        if (response.id !== id) return;
        settle('decoded' in response ? response.decoded : { reason: response.reason });
      };
      const onExit = (code: number) => restart(`the decoder stopped unexpectedly (exit code ${code})`);
      const onError = (error: Error) =>
        restart(
          (error as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? `the decoder ran out of memory (limit ${DECODER_HEAP_MIB} MiB)`
            : `the decoder crashed: ${error.message}`,
        );
      const timer = setTimeout(
        () =>
          restart(
            `decoding did not finish within ${this.timeoutMs} ms (decodeTimeoutMs); the decoder was stopped`,
          ),
        this.timeoutMs,
      );
      worker.on('message', onMessage);
      worker.once('exit', onExit);
      worker.once('error', onError);
      // A copy goes to the thread so the caller's buffer stays usable (it is hashed afterwards).
      worker.postMessage({ id, bytes, path, options } satisfies DecodeRequest);
    });
  }

  /** Stops the decoder thread. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker !== undefined) await (await worker).terminate();
  }

  private start(): Promise<Worker> {
    this.worker ??= new Promise((resolve, reject) => {
      const worker = new Worker(new URL('./decode-worker.mjs', import.meta.url), {
        resourceLimits: { maxOldGenerationSizeMb: DECODER_HEAP_MIB },
      });
      worker.once('message', () => resolve(worker));
      worker.once('error', reject);
    });
    return this.worker;
  }
}
