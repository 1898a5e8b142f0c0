/**
 * The worker-thread side of {@link HePool}: receives jobs, runs them one at a time (a SEAL instance
 * is single-threaded), and posts results or errors back.
 */
import { parentPort } from 'node:worker_threads';
import { HeWorkerError } from '../errors.js';
import type { WorkerJob, WorkerReply } from './pool.js';

/** A job handler: returns the result and any buffers to move (not copy) back. */
export type JobHandler = (job: WorkerJob) => Promise<{ result: unknown; transfer?: ArrayBuffer[] }>;

/** Serves jobs on this worker thread with `handlers`, keyed by `op`. */
export function serveJobs(handlers: Record<string, JobHandler>): void {
  const port = parentPort;
  if (!port) throw new HeWorkerError('HE worker modules run only in worker threads.');
  let chain = Promise.resolve();
  port.on('message', ({ id, job }: { id: number; job: WorkerJob }) => {
    chain = chain.then(async () => {
      let reply: WorkerReply;
      let transfer: ArrayBuffer[] = [];
      try {
        const handler = handlers[job.op];
        if (!handler) throw new HeWorkerError(`unknown HE worker operation "${job.op}"`);
        const out = await handler(job);
        reply = { id, ok: true, result: out.result };
        transfer = out.transfer ?? [];
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        reply = {
          id,
          ok: false,
          error: { name: e.name, message: e.message, reason: (e as { reason?: string }).reason },
          // SEAL's abort() leaves the instance unusable; the pool replaces this thread.
          fatal: /Aborted\(/.test(e.message),
        };
      }
      port.postMessage(reply, transfer);
    });
  });
}
