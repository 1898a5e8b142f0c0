import { asc, inArray, isNull } from 'drizzle-orm';
import type { BusEvent, EventMap, EventTopic } from '../../events/types.js';
import type { Executor } from '../client.js';
import { outbox } from '../schema.js';

/**
 * Writes an event to the outbox. Call it inside the transaction that makes the state change, so the
 * change and its event commit (or vanish) together.
 */
export async function emit<T extends EventTopic>(
  ex: Executor,
  topic: T,
  payload: EventMap[T],
): Promise<void> {
  await ex.insert(outbox).values({ topic, payload });
}

export async function fetchUnpublished(ex: Executor, limit: number): Promise<BusEvent[]> {
  const rows = await ex
    .select()
    .from(outbox)
    .where(isNull(outbox.publishedAt))
    .orderBy(asc(outbox.id))
    .limit(limit);
  // emit() wrote each row from a typed topic and payload, so the pair is trusted to match.
  return rows.map((r) => ({ id: r.id, topic: r.topic, payload: r.payload, at: r.createdAt }) as BusEvent);
}

export async function markPublished(ex: Executor, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await ex.update(outbox).set({ publishedAt: new Date() }).where(inArray(outbox.id, ids));
}
