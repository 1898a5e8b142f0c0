import type { BusEvent, EventBus } from './types.js';

/** The outbox table as the relay sees it. */
export interface OutboxSource {
  /** Oldest unpublished outbox rows, in id order. */
  fetchUnpublished(limit: number): Promise<BusEvent[]>;
  markPublished(ids: number[]): Promise<void>;
}

/** Options for {@link OutboxRelay}. */
export interface OutboxRelayOptions {
  source: OutboxSource;
  bus: EventBus;
  /** Milliseconds between passes when nothing pokes the relay. Default 200. */
  intervalMs?: number;
  /** Rows fetched, published and marked per round trip. Default 100. */
  batchSize?: number;
  /** Called when a scheduled pass fails; the rows stay for the next one. Default: `console.error`. */
  onError?: (err: unknown) => void;
}

/**
 * Moves events from the database outbox to the {@link EventBus}.
 *
 * A pass publishes unpublished rows in id order, batch by batch, and marks each batch published
 * once the bus has accepted it. If a publish fails, the rows before it are marked and the rest stay
 * for the next pass, so nothing is lost; a crash between publishing and marking re-publishes rows,
 * which the bus de-duplicates by id where it can (delivery is at-least-once). Passes never overlap,
 * so rows reach the bus in id order.
 */
export class OutboxRelay {
  private readonly source: OutboxSource;
  private readonly bus: EventBus;
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private readonly onError: (err: unknown) => void;

  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private passInFlight = false;
  private pokedDuringPass = false;
  /** Tail of the chain that serialises passes, whoever started them. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(options: OutboxRelayOptions) {
    this.source = options.source;
    this.bus = options.bus;
    this.intervalMs = options.intervalMs ?? 200;
    this.batchSize = options.batchSize ?? 100;
    this.onError = options.onError ?? ((err) => console.error('outbox relay: pass failed:', err));
    if (!Number.isFinite(this.intervalMs) || this.intervalMs <= 0) {
      throw new RangeError(`intervalMs must be a positive number, got ${this.intervalMs}`);
    }
    if (!Number.isSafeInteger(this.batchSize) || this.batchSize < 1) {
      throw new RangeError(`batchSize must be a positive integer, got ${this.batchSize}`);
    }
  }

  /** Starts passing every `intervalMs`, beginning now (rows left over from before a crash go first). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /**
   * Runs a pass soon. Call after committing a transaction that wrote to the outbox, so its events
   * go out without waiting for the interval. Ignored unless started.
   */
  poke(): void {
    if (!this.running) return;
    // The pass in flight may have fetched before the commit: run another straight after it.
    if (this.passInFlight) this.pokedDuringPass = true;
    else this.schedule(0);
  }

  /**
   * Publishes everything pending, after any pass in flight; for shutdown (works started or not).
   * Rejects if a publish fails, leaving the remaining rows in the outbox.
   */
  drain(): Promise<void> {
    return this.exclusive(() => this.publishPending());
  }

  /** Stops scheduling passes and waits for one in flight. Pending rows stay in the outbox. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.tail;
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.scheduledPass(), delayMs);
    // The relay alone should not keep a process alive that has otherwise finished.
    this.timer.unref();
  }

  private async scheduledPass(): Promise<void> {
    this.timer = undefined;
    this.passInFlight = true;
    this.pokedDuringPass = false;
    let failed = false;
    try {
      await this.exclusive(() => this.publishPending());
    } catch (err) {
      failed = true;
      try {
        this.onError(err);
      } catch {
        // A broken error callback must not stop the relay.
      }
    } finally {
      this.passInFlight = false;
    }
    // After a failure wait the full interval, so a bus that is down is not hammered.
    if (this.running) this.schedule(this.pokedDuringPass && !failed ? 0 : this.intervalMs);
  }

  /** Runs `fn` once every earlier pass has settled, so passes never overlap. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async publishPending(): Promise<void> {
    for (;;) {
      const events = await this.source.fetchUnpublished(this.batchSize);
      const published: number[] = [];
      let failure: { err: unknown } | undefined;
      for (const event of events) {
        try {
          await this.bus.publish(event);
        } catch (err) {
          failure = { err };
          break;
        }
        published.push(event.id);
      }
      // Mark what did go out even when a later row failed, so the next pass resumes after it
      // instead of relying on the bus to drop the copies.
      if (published.length > 0) await this.source.markPublished(published);
      if (failure) throw failure.err;
      if (events.length < this.batchSize) return;
    }
  }
}
