import { InProcessEventBus, NatsEventBus } from '@radfed/coordinator/testing';
import { afterAll, describe, expect, it } from 'vitest';
import {
  connectNatsBus,
  deleteNatsStream,
  eventBusContract,
  isolatedNatsNames,
  makeEvent,
  Recorder,
  sleep,
} from './event-bus.contract.js';

eventBusContract('InProcessEventBus', async ({ onError }) => new InProcessEventBus({ onError }));

const names = isolatedNatsNames();
eventBusContract(
  'NatsEventBus',
  ({ onError }) => connectNatsBus({ ...names, onError }),
  () => deleteNatsStream(names),
);

describe('NatsEventBus', () => {
  const own = isolatedNatsNames();
  afterAll(() => deleteNatsStream(own));

  it('delivers an event published twice with the same id once (JetStream de-duplication)', async () => {
    const bus = await connectNatsBus(own);
    try {
      const recorder = new Recorder();
      await bus.subscribe(recorder.handler);
      const event = makeEvent('site.revoked', { federationId: 'f', siteId: 's', reason: 'gone' });
      const next = makeEvent('site.revoked', { federationId: 'f', siteId: 't', reason: 'gone' });
      await bus.publish(event);
      // As the outbox relay does after a crash between publishing a row and marking it.
      await bus.publish({ ...event });
      await bus.publish(next);

      await recorder.waitFor(2);
      await sleep(300);
      expect(recorder.events).toEqual([event, next]);
    } finally {
      await bus.close();
    }
  });

  it('creates its stream on first connect and reuses it afterwards', async () => {
    const fresh = isolatedNatsNames();
    try {
      await (await connectNatsBus(fresh)).close();
      const bus = await connectNatsBus(fresh);
      try {
        const recorder = new Recorder();
        await bus.subscribe(recorder.handler);
        const event = makeEvent('round.sealing', { federationId: 'f', roundId: 'r' });
        await bus.publish(event);
        expect(await recorder.waitFor(1)).toEqual([event]);
      } finally {
        await bus.close();
      }
    } finally {
      await deleteNatsStream(fresh);
    }
  });

  it('rejects connect when no server listens', async () => {
    await expect(NatsEventBus.connect({ url: 'nats://127.0.0.1:1' })).rejects.toThrow();
  });
});
