import {
  type ConsumerMessages,
  connect,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  type NatsError,
} from 'nats';
import { type EventBusErrorHandler, reportEventBusError } from './in-process-bus.js';
import type { BusEvent, EventBus, EventHandler } from './types.js';

/** Options for {@link NatsEventBus.connect}. */
export interface NatsEventBusOptions {
  /** Server URL, e.g. `nats://127.0.0.1:4222`. */
  url: string;
  /** JetStream stream holding the events; created when missing. Default `RADFED`. */
  stream?: string;
  /** Events go to `<subjectPrefix>.<topic>`; the stream captures `<subjectPrefix>.>`. Default `radfed`. */
  subjectPrefix?: string;
  onError?: EventBusErrorHandler;
}

/** What goes on the wire: {@link BusEvent} with `at` as an ISO-8601 string. */
interface WireEvent {
  id: number;
  topic: string;
  payload: unknown;
  at: string;
}

interface Subscription {
  messages: ConsumerMessages;
  /** Settles when the delivery loop has returned from its last handler. */
  done: Promise<void>;
  active: boolean;
}

/**
 * An {@link EventBus} on NATS JetStream, for several coordinator replicas or outside listeners.
 *
 * Each event is published with JetStream message id `String(event.id)`, so when the outbox relay
 * re-publishes rows after a crash the stream drops the copies (within its duplicate window, two
 * minutes unless the stream was created with another). Each subscription is an ordered ephemeral
 * consumer; its handler gets one event at a time, in stream order.
 */
export class NatsEventBus implements EventBus {
  private readonly subscriptions = new Set<Subscription>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    /** The JetStream stream name. */
    readonly stream: string,
    /** The subject prefix; events go to `<subjectPrefix>.<topic>`. */
    readonly subjectPrefix: string,
    private readonly onError: EventBusErrorHandler | undefined,
  ) {}

  /** Connects and makes sure the stream exists. Rejects when the server cannot be reached. */
  static async connect(options: NatsEventBusOptions): Promise<NatsEventBus> {
    const stream = options.stream ?? 'RADFED';
    const subjectPrefix = options.subjectPrefix ?? 'radfed';
    const nc = await connect({
      servers: options.url,
      name: 'radfed-event-bus',
      // The client gives up after 10 reconnects by default, which would leave a long-running
      // coordinator with a dead bus after a short NATS outage. Publishes fail while disconnected,
      // and the outbox relay retries them.
      maxReconnectAttempts: -1,
    });
    try {
      const jsm = await nc.jetstreamManager();
      await ensureStream(jsm, stream, subjectPrefix);
      const { onError } = options;
      const bus = new NatsEventBus(nc, nc.jetstream(), jsm, stream, subjectPrefix, onError);
      // Only reached with an error if the client gave up on the server for good.
      void nc.closed().then((err) => {
        if (err) reportEventBusError(onError, err);
      });
      return bus;
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  async publish(event: BusEvent): Promise<void> {
    const wire: WireEvent = { ...event, at: event.at.toISOString() };
    await this.js.publish(`${this.subjectPrefix}.${event.topic}`, JSON.stringify(wire), {
      msgID: String(event.id),
    });
  }

  async subscribe(handler: EventHandler): Promise<{ unsubscribe(): Promise<void> }> {
    // Start right after the stream's last message rather than with DeliverPolicy.New: when the
    // ordered consumer is recreated (after a reconnect or missed heartbeats) before its first
    // message, the client re-applies the initial policy, and `New` would skip whatever was
    // published in between; a start sequence resumes where this subscription began.
    const { state } = await this.jsm.streams.info(this.stream);
    const consumer = await this.js.consumers.get(this.stream, {
      filterSubjects: `${this.subjectPrefix}.>`,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: state.last_seq + 1,
    });
    // Resolves once the consumer exists on the server, so later publishes are seen.
    const messages = await consumer.consume();
    const subscription: Subscription = { messages, done: Promise.resolve(), active: true };
    subscription.done = this.deliver(subscription, handler);
    this.subscriptions.add(subscription);
    return {
      unsubscribe: async () => {
        this.subscriptions.delete(subscription);
        await stop(subscription);
        // The client does not delete ordered consumers when it stops; the server would only
        // after their inactivity threshold (five minutes).
        await consumer.delete().catch(() => false);
      },
    };
  }

  /**
   * Deletes this bus's stream and every event in it; a stream already gone is not an error. For
   * tests that isolate themselves in a stream of their own, and for decommissioning. Subscriptions
   * on the stream end (and report an error), so unsubscribe them first.
   */
  async deleteStream(): Promise<void> {
    try {
      await this.jsm.streams.delete(this.stream);
    } catch (err) {
      if (!isStreamNotFound(err)) throw err;
    }
  }

  /**
   * Stops every subscription, waits for handlers still running, then drains the connection
   * (flushing anything still buffered) and closes it.
   */
  async close(): Promise<void> {
    const stopping = [...this.subscriptions];
    this.subscriptions.clear();
    await Promise.all(
      stopping.map(async (subscription) => {
        await stop(subscription);
        await subscription.done;
      }),
    );
    if (!this.nc.isClosed()) await this.nc.drain();
  }

  private async deliver(subscription: Subscription, handler: EventHandler): Promise<void> {
    try {
      for await (const message of subscription.messages) {
        // The iterator still yields the rest of a fetched batch after it is stopped.
        if (!subscription.active) break;
        let event: BusEvent;
        try {
          event = decode(message.string());
        } catch (err) {
          reportEventBusError(this.onError, err);
          continue;
        }
        try {
          await handler(event);
        } catch (err) {
          reportEventBusError(this.onError, err, event);
        }
      }
    } catch (err) {
      reportEventBusError(this.onError, err);
    }
  }
}

async function stop(subscription: Subscription): Promise<void> {
  subscription.active = false;
  await subscription.messages.close();
}

async function ensureStream(jsm: JetStreamManager, stream: string, prefix: string): Promise<void> {
  try {
    await jsm.streams.info(stream);
    return;
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
  }
  // Two replicas starting together may both get here; adding an identical stream is idempotent.
  await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`] });
}

function isStreamNotFound(err: unknown): boolean {
  return (err as Partial<NatsError> | undefined)?.api_error?.err_code === 10059;
}

function decode(data: string): BusEvent {
  const wire: unknown = JSON.parse(data);
  if (!isWireEvent(wire)) throw new Error(`not a RadFed event: ${data.slice(0, 200)}`);
  const at = new Date(wire.at);
  if (Number.isNaN(at.getTime())) throw new Error(`event #${wire.id} has a bad time '${wire.at}'`);
  // Our own publish wrote this; the payload is trusted to match its topic, as the outbox row was.
  return { id: wire.id, topic: wire.topic, payload: wire.payload, at } as BusEvent;
}

function isWireEvent(value: unknown): value is WireEvent {
  if (typeof value !== 'object' || value === null) return false;
  const { id, topic, payload, at } = value as Record<string, unknown>;
  return (
    typeof id === 'number' &&
    typeof topic === 'string' &&
    typeof payload === 'object' &&
    payload !== null &&
    typeof at === 'string'
  );
}
