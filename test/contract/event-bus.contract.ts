import { randomBytes } from 'node:crypto';
import {
  type BusEvent,
  type EventBus,
  type EventBusErrorHandler,
  type EventMap,
  type EventTopic,
  NatsEventBus,
  type NatsEventBusOptions,
} from '@radfed/coordinator/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { NATS_URL } from '../support/services.js';

/** A stream and subject prefix of its own, so concurrent suites and runs never see each other. */
export function isolatedNatsNames(): { stream: string; subjectPrefix: string } {
  const suffix = randomBytes(6).toString('hex');
  return { stream: `RADFED_TEST_${suffix}`, subjectPrefix: `radfed-test-${suffix}` };
}

/** Connects to {@link NATS_URL}, turning "nothing listening" into a message that says what to do. */
export async function connectNatsBus(options: Omit<NatsEventBusOptions, 'url'>): Promise<NatsEventBus> {
  try {
    return await NatsEventBus.connect({ url: NATS_URL, ...options });
  } catch (err) {
    throw new Error(
      `cannot use NATS JetStream at ${NATS_URL} (${String(err)}). These suites need a real ` +
        'server: start one with `nats-server -js` (JetStream enabled), or set NATS_URL to one.',
      { cause: err },
    );
  }
}

/** Deletes a test stream through a bus of its own, since the suite has closed its buses by then. */
export async function deleteNatsStream(names: { stream: string; subjectPrefix: string }): Promise<void> {
  const bus = await connectNatsBus(names);
  try {
    await bus.deleteStream();
  } finally {
    await bus.close();
  }
}

/** What the suite hands to `makeBus`; an implementation wires these into its bus. */
export interface BusHooks {
  onError: EventBusErrorHandler;
}

/** How long to wait for an event that should arrive, and to be sure one that should not, doesn't. */
const ARRIVAL_TIMEOUT_MS = 5_000;
const QUIET_PERIOD_MS = 300;

let lastId = 0;

/**
 * A typed event with an id unique in this process: buses that de-duplicate by id (JetStream) would
 * otherwise drop a test's events as repeats of an earlier test's.
 */
export function makeEvent<T extends EventTopic>(
  topic: T,
  payload: EventMap[T],
  at = new Date(),
): BusEvent<T> {
  lastId += 1;
  return { id: Date.now() * 1000 + lastId, topic, payload, at };
}

/** Records what a subscriber receives and waits for it. */
export class Recorder {
  readonly events: BusEvent[] = [];
  readonly handler = (event: BusEvent): void => {
    this.events.push(event);
  };

  /** Resolves once `count` events have arrived; fails the test after a timeout. */
  async waitFor(count: number, timeoutMs = ARRIVAL_TIMEOUT_MS): Promise<BusEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length < count) {
      if (Date.now() > deadline) {
        throw new Error(`expected ${count} events within ${timeoutMs} ms, got ${this.events.length}`);
      }
      await sleep(10);
    }
    return this.events;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The behaviour every {@link EventBus} must show. `makeBus` is called once per test (the suite
 * closes each bus); `cleanup` runs after the suite (for example to delete a NATS stream).
 */
export function eventBusContract(
  name: string,
  makeBus: (hooks: BusHooks) => Promise<EventBus>,
  cleanup?: () => Promise<void>,
): void {
  describe(`EventBus contract: ${name}`, () => {
    const open: EventBus[] = [];
    const errors: { err: unknown; event?: BusEvent }[] = [];

    async function newBus(): Promise<EventBus> {
      const bus = await makeBus({ onError: (err, event) => errors.push({ err, event }) });
      open.push(bus);
      return bus;
    }

    afterEach(async () => {
      await Promise.all(open.splice(0).map((bus) => bus.close()));
      errors.length = 0;
    });

    afterAll(async () => {
      await cleanup?.();
    });

    it('delivers several typed events in publish order', async () => {
      const bus = await newBus();
      const recorder = new Recorder();
      await bus.subscribe(recorder.handler);
      const sent: BusEvent[] = [
        makeEvent('federation.created', { federationId: 'f1', name: 'chest-ct' }),
        makeEvent('site.enrolled', { federationId: 'f1', siteId: 's1', siteName: 'Leeds' }),
        makeEvent('round.opened', {
          federationId: 'f1',
          roundId: 'r1',
          number: 1,
          invitedSiteIds: ['s1', 's2'],
        }),
      ];
      for (let i = 0; i < 20; i++) {
        sent.push(makeEvent('round.scheduled', { federationId: 'f1', roundId: `r${i}`, number: i }));
      }
      for (const event of sent) await bus.publish(event);

      expect(await recorder.waitFor(sent.length)).toEqual(sent);
    });

    it('round-trips the payload and the time exactly', async () => {
      const bus = await newBus();
      const recorder = new Recorder();
      await bus.subscribe(recorder.handler);
      const at = new Date('2024-05-06T07:08:09.123Z');
      const sealed = makeEvent(
        'round.sealed',
        {
          federationId: 'fed-ü',
          roundId: 'r-42',
          number: 42,
          modelVersion: 7,
          includedSiteIds: ['a', 'b', 'c'],
          totalSamples: 123_456_789,
        },
        at,
      );
      await bus.publish(sealed);

      const [received] = await recorder.waitFor(1);
      expect(received).toEqual(sealed);
      expect(received?.at).toBeInstanceOf(Date);
      expect(received?.at.getTime()).toBe(at.getTime());
    });

    it('delivers every event to every subscriber', async () => {
      const bus = await newBus();
      const first = new Recorder();
      const second = new Recorder();
      await bus.subscribe(first.handler);
      await bus.subscribe(second.handler);
      const sent = [1, 2, 3].map((number) =>
        makeEvent('round.scheduled', { federationId: 'f', roundId: `r${number}`, number }),
      );
      for (const event of sent) await bus.publish(event);

      expect(await first.waitFor(3)).toEqual(sent);
      expect(await second.waitFor(3)).toEqual(sent);
    });

    it('stops delivering to a subscriber once it unsubscribes', async () => {
      const bus = await newBus();
      const leaving = new Recorder();
      const staying = new Recorder();
      const subscription = await bus.subscribe(leaving.handler);
      await bus.subscribe(staying.handler);
      const before = makeEvent('round.sealing', { federationId: 'f', roundId: 'r1' });
      await bus.publish(before);
      await leaving.waitFor(1);

      await subscription.unsubscribe();
      const after = makeEvent('round.sealing', { federationId: 'f', roundId: 'r2' });
      await bus.publish(after);

      expect(await staying.waitFor(2)).toEqual([before, after]);
      await sleep(QUIET_PERIOD_MS);
      expect(leaving.events).toEqual([before]);
    });

    it('delivers only events published after subscribing', async () => {
      const bus = await newBus();
      await bus.publish(makeEvent('site.invited', { federationId: 'f', siteName: 'early' }));
      const recorder = new Recorder();
      await bus.subscribe(recorder.handler);
      const late = makeEvent('site.invited', { federationId: 'f', siteName: 'late' });
      await bus.publish(late);

      // Delivery is ordered, so the earlier event would have arrived before this one.
      await recorder.waitFor(1);
      await sleep(QUIET_PERIOD_MS);
      expect(recorder.events).toEqual([late]);
    });

    it('keeps delivering when a handler throws, and reports the failure', async () => {
      const bus = await newBus();
      let thrown = 0;
      await bus.subscribe(() => {
        thrown += 1;
        throw new Error(`handler failure ${thrown}`);
      });
      await bus.subscribe(async () => {
        await sleep(1);
        throw new Error('async handler failure');
      });
      const recorder = new Recorder();
      await bus.subscribe(recorder.handler);
      const sent = [1, 2, 3].map((number) =>
        makeEvent('round.failed', { federationId: 'f', roundId: `r${number}`, number, reason: 'x' }),
      );
      for (const event of sent) await bus.publish(event);

      expect(await recorder.waitFor(3)).toEqual(sent);
      await waitUntil(() => errors.length === 6);
      // The throwing subscriber itself keeps getting events too.
      expect(thrown).toBe(3);
      expect(errors.map(({ event }) => event?.id).sort()).toEqual(
        [...sent, ...sent].map(({ id }) => id).sort(),
      );
    });

    it('lets a handler unsubscribe itself', async () => {
      const bus = await newBus();
      const seen: BusEvent[] = [];
      const subscription = await bus.subscribe(async (event) => {
        seen.push(event);
        await subscription.unsubscribe();
      });
      const recorder = new Recorder();
      await bus.subscribe(recorder.handler);
      const sent = [1, 2].map((number) =>
        makeEvent('round.cancelled', { federationId: 'f', roundId: `r${number}`, number, reason: 'x' }),
      );
      for (const event of sent) await bus.publish(event);

      await recorder.waitFor(2);
      await sleep(QUIET_PERIOD_MS);
      expect(seen).toEqual(sent.slice(0, 1));
    });
  });
}

/** Polls `condition` until it holds; fails the test after a timeout. */
export async function waitUntil(condition: () => boolean, timeoutMs = ARRIVAL_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}
