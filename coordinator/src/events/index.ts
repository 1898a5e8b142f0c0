import { type EventBusErrorHandler, InProcessEventBus } from './in-process-bus.js';
import { NatsEventBus } from './nats-bus.js';
import type { EventBus } from './types.js';

export {
  type EventBusErrorHandler,
  InProcessEventBus,
  type InProcessEventBusOptions,
} from './in-process-bus.js';
export { NatsEventBus, type NatsEventBusOptions } from './nats-bus.js';
export { OutboxRelay, type OutboxRelayOptions, type OutboxSource } from './outbox-relay.js';
export type { BusEvent, EventBus, EventHandler, EventMap, EventTopic } from './types.js';

/** Options for {@link createEventBus}. */
export interface CreateEventBusOptions {
  /** NATS server URL; without it the bus is in-process. */
  natsUrl?: string;
  /** JetStream stream name (NATS only). Default `RADFED`. */
  stream?: string;
  /** Subject prefix (NATS only). Default `radfed`. */
  subjectPrefix?: string;
  /** Where handler failures go. Default: `console.error`. */
  onError?: EventBusErrorHandler;
}

/** The coordinator's event bus: NATS JetStream when `natsUrl` is set, in-process otherwise. */
export async function createEventBus(options: CreateEventBusOptions): Promise<EventBus> {
  const { natsUrl, stream, subjectPrefix, onError } = options;
  if (natsUrl === undefined) return new InProcessEventBus({ onError });
  return NatsEventBus.connect({ url: natsUrl, stream, subjectPrefix, onError });
}
