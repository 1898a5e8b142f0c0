/**
 * The outbox relay over the real outbox table (PGlite and PostgreSQL) and each real bus (in-process
 * and NATS JetStream): rows written with `emit`, as the engine writes them, reach the bus in id
 * order, are marked once the bus took them, and stay when it fails.
 */
import {
  type BusEvent,
  type DatabaseHandle,
  type EventBus,
  type EventHandler,
  type EventMap,
  InProcessEventBus,
  OutboxRelay,
  type OutboxSource,
  outboxQueries,
  tables,
} from '@radfed/coordinator/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { STORE_KINDS, type TestStore } from '../support/stores.js';
import {
  connectNatsBus,
  deleteNatsStream,
  isolatedNatsNames,
  Recorder,
  sleep,
  waitUntil,
} from './event-bus.contract.js';

type Payload = EventMap['round.update_accepted'];

/** A pass the test holds inside `fetchUnpublished` until it lets go. */
interface HeldPass {
  /** Resolves once a pass has entered `fetchUnpublished`. */
  entered: Promise<void>;
  release(): void;
}

/**
 * The outbox table as the coordinator hands it to the relay (`app.ts`), instrumented: how many
 * fetches ran, the most passes inside it at once, an optional delay per call, and a way to hold a
 * pass in flight.
 */
class TableOutbox implements OutboxSource {
  /** Most calls seen inside the source at once; a correct relay never exceeds one. */
  maxConcurrentCalls = 0;
  fetches = 0;
  private calls = 0;
  private added = 0;
  private hold: { entered: () => void; released: Promise<void> } | undefined;

  constructor(
    private readonly handle: DatabaseHandle,
    private readonly delayMs = 0,
  ) {}

  /** Writes `count` outbox rows, one transaction each as the engine does; returns their payloads. */
  async add(count: number): Promise<Payload[]> {
    const payloads: Payload[] = [];
    for (let i = 0; i < count; i++) {
      this.added += 1;
      const payload = {
        federationId: 'f',
        roundId: 'r',
        siteId: `site-${this.added}`,
        sampleCount: this.added,
        digest: `sha256:${this.added}`,
      };
      await outboxQueries.emit(this.handle.db, 'round.update_accepted', payload);
      payloads.push(payload);
    }
    return payloads;
  }

  async unpublishedCount(): Promise<number> {
    return (await outboxQueries.fetchUnpublished(this.handle.db, 10_000)).length;
  }

  /** Makes the next fetch wait, inside the pass, until `release()`. */
  holdNextFetch(): HeldPass {
    let entered!: () => void;
    let release!: () => void;
    const enteredP = new Promise<void>((resolve) => (entered = resolve));
    this.hold = { entered, released: new Promise<void>((resolve) => (release = resolve)) };
    return { entered: enteredP, release };
  }

  fetchUnpublished(limit: number): Promise<BusEvent[]> {
    return this.track(async () => {
      this.fetches += 1;
      const hold = this.hold;
      this.hold = undefined;
      if (hold) {
        hold.entered();
        await hold.released;
      }
      return outboxQueries.fetchUnpublished(this.handle.db, limit);
    });
  }

  markPublished(ids: number[]): Promise<void> {
    return this.track(() => outboxQueries.markPublished(this.handle.db, ids));
  }

  private async track<T>(fn: () => Promise<T>): Promise<T> {
    this.calls += 1;
    this.maxConcurrentCalls = Math.max(this.maxConcurrentCalls, this.calls);
    try {
      if (this.delayMs > 0) await sleep(this.delayMs);
      return await fn();
    } finally {
      this.calls -= 1;
    }
  }
}

/** What the bus delivered, as the payloads the test wrote; ids must rise strictly (id order). */
function delivered(events: BusEvent[]): unknown[] {
  const ids = events.map((e) => e.id);
  expect(ids).toEqual([...ids].sort((a, b) => a - b));
  expect(new Set(ids).size).toBe(ids.length);
  return events.map((e) => e.payload);
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

function relayContract(
  storeName: string,
  store: () => TestStore,
  busName: string,
  makeBus: () => Promise<EventBus>,
  cleanup?: () => Promise<void>,
) {
  describe(`OutboxRelay on ${storeName} over ${busName}`, () => {
    const relays: OutboxRelay[] = [];
    const buses: EventBus[] = [];
    let handle: DatabaseHandle;

    async function setUp(options: { failAt?: number; delayMs?: number; intervalMs?: number } = {}) {
      const real = await makeBus();
      buses.push(real);
      const bus = options.failAt === undefined ? real : new FailingOnceBus(real, options.failAt);
      const source = new TableOutbox(handle, options.delayMs);
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

    beforeAll(async () => {
      handle = await store().open();
    });

    // Each test starts from an empty outbox; ids keep rising, so a JetStream stream never takes a
    // row for a repeat of an earlier test's.
    beforeEach(async () => {
      await handle.db.delete(tables.outbox);
    });

    afterEach(async () => {
      await Promise.all(relays.splice(0).map((relay) => relay.stop()));
      await Promise.all(buses.splice(0).map((bus) => bus.close()));
    });

    afterAll(async () => {
      await handle?.close();
      await cleanup?.();
    });

    it('relays every event, in id order, across batches', async () => {
      const { source, recorder, relay, errors } = await setUp();
      const first = await source.add(6);
      relay.start();
      const second = await source.add(5);
      relay.poke();

      expect(delivered(await recorder.waitFor(11))).toEqual([...first, ...second]);
      // Rows are marked after the bus accepts them, so delivery can beat the mark.
      await waitFor(async () => (await source.unpublishedCount()) === 0);
      expect(errors).toEqual([]);
    });

    it('leaves rows after a failed publish for the next pass, losing and repeating nothing', async () => {
      const { source, recorder, relay, errors } = await setUp({ failAt: 3 });
      const events = await source.add(7);
      relay.start();

      await waitUntil(() => errors.length === 1);
      await waitFor(async () => (await source.unpublishedCount()) === 0);
      expect(delivered(await recorder.waitFor(7))).toEqual(events);
      await sleep(200);
      expect(delivered(recorder.events)).toEqual(events);
      expect(String(errors[0])).toContain('bus unavailable');
    });

    it('marks the rows before a failed publish, so the next pass resumes after them', async () => {
      const { source, relay } = await setUp({ failAt: 3 });
      const events = await source.add(5);

      await expect(relay.drain()).rejects.toThrow('bus unavailable');
      const left = await outboxQueries.fetchUnpublished(handle.db, 100);
      expect(left.map((e) => e.payload)).toEqual(events.slice(2));
    });

    it('drain() publishes everything pending without being started', async () => {
      const { source, recorder, relay } = await setUp();
      const events = await source.add(10);

      await relay.drain();
      expect(await source.unpublishedCount()).toBe(0);
      expect(delivered(await recorder.waitFor(10))).toEqual(events);
    });

    it('publishes soon after poke() without waiting for the interval', async () => {
      const { source, recorder, relay } = await setUp({ intervalMs: 60_000 });
      relay.start();
      await waitUntil(() => source.fetches > 0); // the pass start() runs; the next is a minute away
      const events = await source.add(3);
      relay.poke();

      expect(delivered(await recorder.waitFor(3, 5_000))).toEqual(events);
    });

    it('never runs passes concurrently, however it is poked', async () => {
      const { source, recorder, relay } = await setUp({ delayMs: 5 });
      relay.start();
      const events: Payload[] = [];
      for (let i = 0; i < 10; i++) {
        events.push(...(await source.add(2)));
        relay.poke();
        if (i % 3 === 0) void relay.drain();
        await sleep(3);
      }
      await relay.drain();

      expect(delivered(await recorder.waitFor(20))).toEqual(events);
      expect(source.maxConcurrentCalls).toBe(1);
    });

    it('stop() waits for the pass in flight and then passes no more', async () => {
      const { source, recorder, relay } = await setUp();
      const events = await source.add(2);
      const pass = source.holdNextFetch();
      relay.start();
      await pass.entered; // a pass is in flight (if none started, the test times out here)
      let stopped = false;
      const stopping = relay.stop().then(() => {
        stopped = true;
      });
      await new Promise((resolve) => setImmediate(resolve));
      expect(stopped).toBe(false); // stop() is waiting for the pass
      pass.release();
      await stopping;
      // The pass in flight finished before stop() returned: its rows went out and were marked.
      expect(await source.unpublishedCount()).toBe(0);
      expect(delivered(await recorder.waitFor(2))).toEqual(events);

      const fetches = source.fetches;
      await source.add(2);
      relay.poke();
      await sleep(200); // ten intervals
      expect(source.fetches).toBe(fetches);
      expect(await source.unpublishedCount()).toBe(2);
      expect(recorder.events).toHaveLength(2);
    });
  });
}

/** Polls an async `condition` until it holds; fails the test after five seconds. */
async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met within 5000 ms');
    await sleep(10);
  }
}

for (const kind of STORE_KINDS) {
  describe(kind.name, () => {
    let store: TestStore;
    beforeAll(async () => {
      store = await kind.create();
    });
    afterAll(async () => {
      await store?.cleanup();
    });

    relayContract(
      kind.name,
      () => store,
      'InProcessEventBus',
      async () => new InProcessEventBus(),
    );
    const names = isolatedNatsNames();
    relayContract(
      kind.name,
      () => store,
      'NatsEventBus',
      () => connectNatsBus(names),
      () => deleteNatsStream(names),
    );
  });
}
