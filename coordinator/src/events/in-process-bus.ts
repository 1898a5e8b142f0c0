import type { BusEvent, EventBus, EventHandler } from './types.js';

/**
 * Called when a handler throws or rejects (with the event it was handling), or when a bus cannot
 * decode a message (without one). The default writes to `console.error`.
 */
export type EventBusErrorHandler = (err: unknown, event?: BusEvent) => void;

/** Options for {@link InProcessEventBus}. */
export interface InProcessEventBusOptions {
  onError?: EventBusErrorHandler;
}

/**
 * An {@link EventBus} inside one process, for a single coordinator without NATS.
 *
 * Each subscriber has its own queue, drained one event at a time (an async handler finishes before
 * the next event reaches it), so every subscriber sees events in publish order and a slow or
 * failing subscriber holds up neither the publisher nor the other subscribers. Handlers run after
 * `publish` resolves, never on the publisher's stack.
 *
 * Nothing is durable: events not yet handled when the process stops are gone (the outbox is the
 * durable record). No de-duplication by `id`.
 */
export class InProcessEventBus implements EventBus {
  private readonly onError: EventBusErrorHandler | undefined;
  private readonly subscribers = new Set<Subscriber>();
  private closed = false;

  constructor(options: InProcessEventBusOptions = {}) {
    this.onError = options.onError;
  }

  async publish(event: BusEvent): Promise<void> {
    if (this.closed) throw new Error('cannot publish: the event bus is closed');
    for (const subscriber of this.subscribers) subscriber.push(event);
  }

  async subscribe(handler: EventHandler): Promise<{ unsubscribe(): Promise<void> }> {
    if (this.closed) throw new Error('cannot subscribe: the event bus is closed');
    const subscriber = new Subscriber(handler, this.onError);
    this.subscribers.add(subscriber);
    return {
      unsubscribe: async () => {
        this.subscribers.delete(subscriber);
        // Not waiting for a running handler lets a handler unsubscribe itself without deadlock.
        subscriber.stop();
      },
    };
  }

  /** Stops delivery (queued events are dropped) and waits for handlers still running. */
  async close(): Promise<void> {
    this.closed = true;
    const stopping = [...this.subscribers];
    this.subscribers.clear();
    for (const subscriber of stopping) subscriber.stop();
    await Promise.all(stopping.map((subscriber) => subscriber.idle()));
  }
}

class Subscriber {
  private readonly queue: BusEvent[] = [];
  private pumping: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly handler: EventHandler,
    private readonly onError: EventBusErrorHandler | undefined,
  ) {}

  push(event: BusEvent): void {
    if (this.stopped) return;
    this.queue.push(event);
    this.pumping ??= this.pump();
  }

  /** Drops queued events and refuses new ones; a handler already running carries on. */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
  }

  /** Resolves once no handler is running. */
  idle(): Promise<void> {
    return this.pumping ?? Promise.resolve();
  }

  private async pump(): Promise<void> {
    // Yield first: `pumping` must be set before this can finish, and the publisher goes on first.
    await Promise.resolve();
    for (let event = this.queue.shift(); event !== undefined; event = this.queue.shift()) {
      try {
        await this.handler(event);
      } catch (err) {
        reportEventBusError(this.onError, err, event);
      }
    }
    // Cleared in the same synchronous step as the empty-queue check, so no push can be stranded.
    this.pumping = undefined;
  }
}

/**
 * Passes a delivery failure to `onError` (or logs it when there is none), making sure a throwing
 * error handler cannot break delivery either. Shared by the bus implementations.
 */
export function reportEventBusError(
  onError: EventBusErrorHandler | undefined,
  err: unknown,
  event?: BusEvent,
): void {
  if (!onError) {
    logEventBusError(err, event);
    return;
  }
  try {
    onError(err, event);
  } catch (reportErr) {
    logEventBusError(reportErr, event);
  }
}

function logEventBusError(err: unknown, event?: BusEvent): void {
  const where = event === undefined ? '' : ` while handling ${event.topic} #${event.id}`;
  console.error(`event bus: delivery failed${where}:`, err);
}
