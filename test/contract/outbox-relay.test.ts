import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type BusEvent,
  type EventBus,
  type EventHandler,
  InProcessEventBus,
  OutboxRelay,
  type OutboxSource,
} from '../../coordinator/src/events/index.js';
import {
  connectNatsBus,
  deleteNatsStream,
  isolatedNatsNames,
  makeEvent,
  Recorder,
  sleep,
  waitUntil,
} from './event-bus.contract.js';

/** The outbox table, in memory: rows in id order with a published flag. */
class MemoryOutbox implements OutboxSource {
  private readonly rows: { event: BusEvent; published: boolean }[] = [];
  /** Most passes seen inside the source at once; a correct relay never exceeds one. */
  maxConcurrentCalls = 0;
  private calls = 0;

  constructor(private readonly delayMs = 0) {}

  add(count: number): BusEvent[] {
    const events = Array.from({ length: count }, (_, i) =>
      makeEvent('round.update_accepted', {
        federationId: 'f',
        roundId: 'r',
        siteId: `site-${i}`,
        sampleCount: i,
        digest: `sha256:${i}`,
      }),
    );
    for (const event of events) this.rows.push({ event, published: false });
    return events;
  }

  unpublishedIds(): number[] {
    return this.rows.filter((row) => !row.published).map((row) => row.event.id);
  }

  async fetchUnpublished(limit: number): Promise<BusEvent[]> {
    return this.track(async () =>
      this.rows
        .filter((row) => !row.published)
        .slice(0, limit)
        .map((row) => structuredClone(row.event)),
    );
  }

  async markPublished(ids: number[]): Promise<void> {
    await this.track(async () => {
      for (const row of this.rows) if (ids.includes(row.event.id)) row.published = true;
    });
  }

  private async track<T>(fn: () => Promise<T>): Promise<T> {
    this.calls += 1;
    this.maxConcurrentCalls = Math.max(this.maxConcurrentCalls, this.calls);
    try {
      await sleep(this.delayMs);
      return await fn();
    } finally {
      this.calls -= 1;
    }
  }
}

/** Wraps a real bus; the publish numbered `failAt` (1-based) fails once, as a NATS outage would. */
class FailingOnceBus implements EventBus {
  private publishes = 0;

  constructor(
    private readonly inner: EventBus,
    private readonly failAt: number,
  ) {}

  async publish(event: BusEvent): Promise<void> {
    this.publishes += 1;
    if (this.publishes === this.failAt) throw new Error('bus unavailable');
    await this.inner.publish(event);
  }

  subscribe(handler: EventHandler): Promise<{ unsubscribe(): Promise<void> }> {
    return this.inner.subscribe(handler);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

function relayContract(name: string, makeBus: () => Promise<EventBus>, cleanup?: () => Promise<void>) {
  describe(`OutboxRelay over ${name}`, () => {
    const relays: OutboxRelay[] = [];
    const buses: EventBus[] = [];

    async function setUp(options: { failAt?: number; delayMs?: number; intervalMs?: number } = {}) {
      const real = await makeBus();
      buses.push(real);
      const bus = options.failAt === undefined ? real : new FailingOnceBus(real, options.failAt);
      const source = new MemoryOutbox(options.delayMs);
      const recorder = new Recorder();
      await bus.subscribe(recorder.handler);
      const errors: unknown[] = [];
      const relay = new OutboxRelay({
        source,
        bus,
        intervalMs: options.intervalMs ?? 20,
        batchSize: 4,
        onError: (err) => errors.push(err),
      });
      relays.push(relay);
      return { source, recorder, relay, errors };
    }

    afterEach(async () => {
      await Promise.all(relays.splice(0).map((relay) => relay.stop()));
      await Promise.all(buses.splice(0).map((bus) => bus.close()));
    });

    afterAll(async () => {
      await cleanup?.();
    });

    it('relays every event, in id order, across batches', async () => {
      const { source, recorder, relay, errors } = await setUp();
      const first = source.add(6);
      relay.start();
      const second = source.add(5);
      relay.poke();

      expect(await recorder.waitFor(11)).toEqual([...first, ...second]);
      // Rows are marked after the bus accepts them, so delivery can beat the mark.
      await waitUntil(() => source.unpublishedIds().length === 0);
      expect(errors).toEqual([]);
    });

    it('leaves rows after a failed publish for the next pass, losing and repeating nothing', async () => {
      const { source, recorder, relay, errors } = await setUp({ failAt: 3 });
      const events = source.add(7);
      relay.start();

      await waitUntil(() => errors.length === 1);
      await waitUntil(() => source.unpublishedIds().length === 0);
      expect(await recorder.waitFor(7)).toEqual(events);
      await sleep(200);
      expect(recorder.events).toEqual(events);
      expect(String(errors[0])).toContain('bus unavailable');
    });

    it('marks the rows before a failed publish, so the next pass resumes after them', async () => {
      const { source, relay } = await setUp({ failAt: 3 });
      const events = source.add(5);

      await expect(relay.drain()).rejects.toThrow('bus unavailable');
      expect(source.unpublishedIds()).toEqual(events.slice(2).map(({ id }) => id));
    });

    it('drain() publishes everything pending without being started', async () => {
      const { source, recorder, relay } = await setUp();
      const events = source.add(10);

      await relay.drain();
      expect(source.unpublishedIds()).toEqual([]);
      expect(await recorder.waitFor(10)).toEqual(events);
    });

    it('publishes soon after poke() without waiting for the interval', async () => {
      const { source, recorder, relay } = await setUp({ intervalMs: 60_000 });
      relay.start();
      await sleep(50);
      const events = source.add(3);
      relay.poke();

      expect(await recorder.waitFor(3, 1_000)).toEqual(events);
    });

    it('never runs passes concurrently, however it is poked', async () => {
      const { source, recorder, relay } = await setUp({ delayMs: 5 });
      relay.start();
      const events: BusEvent[] = [];
      for (let i = 0; i < 10; i++) {
        events.push(...source.add(2));
        relay.poke();
        if (i % 3 === 0) void relay.drain();
        await sleep(3);
      }
      await relay.drain();

      expect(await recorder.waitFor(20)).toEqual(events);
      expect(source.maxConcurrentCalls).toBe(1);
    });

    it('stop() waits for the pass in flight and then passes no more', async () => {
      const { source, recorder, relay } = await setUp({ delayMs: 20 });
      relay.start();
      await sleep(5);
      await relay.stop();
      source.add(2);
      await sleep(200);
      expect(source.unpublishedIds()).toHaveLength(2);
      expect(recorder.events).toEqual([]);
    });
  });
}

relayContract('InProcessEventBus', async () => new InProcessEventBus());

const names = isolatedNatsNames();
relayContract(
  'NatsEventBus',
  () => connectNatsBus(names),
  () => deleteNatsStream(names),
);
