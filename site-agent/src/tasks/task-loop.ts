import { status } from '@grpc/grpc-js';
import { RpcError } from '@radfed/proto';
import type { Logger } from '@radfed/shared';
import { TaskDeclinedError } from '../errors.js';
import type { KeyEvent, TrainingTask } from '../transport/convert.js';
import type { SiteClient } from '../transport/site-client.js';
import type { TaskRunner } from './run-task.js';

export interface TaskLoopOptions {
  client: SiteClient;
  runner: TaskRunner;
  log: Logger;
  agentVersion: string;
  backend: string;
  /** Handles HE key work pushed on the task stream (the site's HeKeyring); never throws. */
  keys?: { onKeyEvent(event: KeyEvent): Promise<void> };
  /** Longest wait between reconnection attempts, in ms (default 30 s). */
  maxBackoffMs?: number;
}

/** Statuses after which reconnecting cannot help: the site must be re-enrolled or reinstated. */
const FATAL = new Set([status.UNAUTHENTICATED, status.PERMISSION_DENIED]);

/**
 * Keeps the agent's task stream open, reconnecting with capped exponential backoff and jitter, and
 * runs tasks one at a time in arrival order (a task seen twice runs once).
 */
export class TaskLoop {
  private stopped = false;
  private cancelStream: (() => void) | undefined;
  private readonly queue: TrainingTask[] = [];
  private readonly seen = new Set<string>();
  private working: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;

  constructor(private readonly o: TaskLoopOptions) {}

  /** Runs until stop() or a fatal refusal (rejects with the RpcError then). */
  async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let healthy = false;
      const stream = this.o.client.watchTasks(
        { agentVersion: this.o.agentVersion, backend: this.o.backend },
        (task) => {
          healthy = true;
          this.enqueue(task);
        },
        () => {
          healthy = true;
        },
        (event) => {
          healthy = true;
          // In line with tasks: a task queued after a key request runs with the key in place.
          const keys = this.o.keys;
          if (keys) this.working = this.working.then(() => keys.onKeyEvent(event));
        },
      );
      this.cancelStream = stream.cancel;
      // Before any task: receipts of uploads whose answer was lost to a crash or a broken connection.
      this.working = this.working.then(async () => {
        await this.o.runner.recoverReceipts().catch((e: unknown) => {
          this.o.log.warn(`could not fetch missed receipts: ${(e as Error).message}`);
        });
      });
      if (failures === 0) this.o.log.info(`connected to ${this.o.client.address}; waiting for tasks`);
      const err = await stream.done;
      if (this.stopped) break;
      if (err && FATAL.has(err.code)) throw err;
      failures = healthy ? 1 : failures + 1;
      const backoff = Math.min(this.o.maxBackoffMs ?? 30_000, 1000 * 2 ** (failures - 1));
      const wait = backoff / 2 + Math.random() * (backoff / 2);
      this.o.log.warn(
        `lost the task stream (${err ? `${err.codeName}: ${err.message}` : 'closed by the coordinator'}); reconnecting in ${(wait / 1000).toFixed(1)}s`,
      );
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, wait);
      });
    }
    await this.working;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelStream?.();
    this.wake?.();
    await this.working;
  }

  private enqueue(task: TrainingTask): void {
    if (this.seen.has(task.roundId)) return;
    this.seen.add(task.roundId);
    this.queue.push(task);
    this.working = this.working.then(() => this.next());
  }

  private async next(): Promise<void> {
    const task = this.queue.shift();
    if (!task || this.stopped) return;
    const log = this.o.log.child({ round_id: task.roundId });
    try {
      await this.o.runner.run(task);
    } catch (err) {
      if (err instanceof TaskDeclinedError) {
        log.warn(`declining round ${task.roundNumber}: ${err.message}`);
        await this.o.client
          .decline(task.roundId, err.message)
          .catch((e: unknown) => log.warn(`could not decline: ${RpcError.from(e).message}`));
        return;
      }
      const rpc = err instanceof RpcError ? err : undefined;
      if (rpc && (rpc.code === status.FAILED_PRECONDITION || rpc.code === status.NOT_FOUND)) {
        log.warn(`round ${task.roundNumber} moved on without this site: ${rpc.message}`);
        return;
      }
      if (rpc?.retryable) {
        // The connection failed mid-task: forget the task so it runs again when the stream returns it.
        this.seen.delete(task.roundId);
        log.warn(
          `round ${task.roundNumber} interrupted (${rpc.message}); it resumes when the coordinator is back`,
        );
        return;
      }
      const message = err instanceof Error ? err.message : String(err);
      log.error(`round ${task.roundNumber} failed: ${message}`);
      await this.o.client
        .decline(task.roundId, `the site failed while training: ${message}`)
        .catch(() => undefined);
    }
  }
}
