/**
 * Typed events. Every state change in the coordinator emits one of these, written to the outbox in
 * the same transaction as the change and then relayed to an {@link EventBus}.
 */
export interface EventMap {
  'federation.created': { federationId: string; name: string };
  'site.invited': { federationId: string; siteName: string };
  'site.enrolled': { federationId: string; siteId: string; siteName: string };
  'site.revoked': { federationId: string; siteId: string; reason: string };
  'round.scheduled': { federationId: string; roundId: string; number: number };
  'round.opened': { federationId: string; roundId: string; number: number; invitedSiteIds: string[] };
  'round.update_accepted': {
    federationId: string;
    roundId: string;
    siteId: string;
    sampleCount: number;
    digest: string;
  };
  'round.site_declined': { federationId: string; roundId: string; siteId: string; reason: string };
  'round.sealing': { federationId: string; roundId: string };
  'round.sealed': {
    federationId: string;
    roundId: string;
    number: number;
    modelVersion: number;
    includedSiteIds: string[];
    totalSamples: number;
  };
  'round.failed': { federationId: string; roundId: string; number: number; reason: string };
  'round.cancelled': { federationId: string; roundId: string; number: number; reason: string };
  /** The key custodian published the federation's HE public parameters and wrapped keys. */
  'he.key_bundle_published': {
    federationId: string;
    keyId: string;
    custodianSiteId: string;
    wrappedSiteIds: string[];
  };
  /** A key-holding site wrapped the HE secret key for sites that enrolled after the bundle. */
  'he.keys_wrapped': { federationId: string; keyId: string; wrappedBySiteId: string; siteIds: string[] };
  /** The operator designated the site that generates (or later re-wraps) the HE keys. */
  'he.custodian_designated': { federationId: string; siteId: string };
}

export type EventTopic = keyof EventMap;

/**
 * One delivered event: a union discriminated by `topic`, so checking `event.topic` types its
 * payload. `id` is the outbox row id: unique, increasing, used for de-duplication.
 */
export type BusEvent<T extends EventTopic = EventTopic> = {
  [K in T]: { id: number; topic: K; payload: EventMap[K]; at: Date };
}[T];

/** Topics of the events about one round (each payload names `federationId` and `roundId`). */
export type RoundEventTopic = Extract<EventTopic, `round.${string}`>;

/** Whether `event` is about one round, so its payload names the round. */
export function isRoundEvent(event: BusEvent): event is BusEvent<RoundEventTopic> {
  return event.topic.startsWith('round.');
}

export type EventHandler = (event: BusEvent) => void | Promise<void>;

/**
 * Where relayed events go. Delivery is at-least-once from the outbox; implementations de-duplicate
 * by `id` where they can (JetStream's message id does).
 */
export interface EventBus {
  /** Publishes one event; resolves once the bus has durably accepted it. */
  publish(event: BusEvent): Promise<void>;
  /** Delivers every event published after this call to `handler`, in order. */
  subscribe(handler: EventHandler): Promise<{ unsubscribe(): Promise<void> }>;
  close(): Promise<void>;
}
