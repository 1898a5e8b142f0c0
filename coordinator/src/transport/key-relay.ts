import type { Logger } from '@radfed/shared';
import type { KeyCustodyService } from '../custody/service.js';
import type { EventHandler } from '../events/types.js';
import type { Db } from '../store/client.js';
import * as federationQ from '../store/queries/federations.js';
import * as siteQ from '../store/queries/sites.js';
import { keyWorkToProto } from './convert.js';
import type { TaskHub } from './task-hub.js';

export interface KeyRelayDeps {
  db: Db;
  custody: KeyCustodyService;
  hub: TaskHub;
  log: Logger;
}

/**
 * Pushes key work down the task streams of connected sites when key custody changes: a new site
 * enrols (the key holder should wrap for it), a bundle or wraps are published (their recipients can
 * fetch them; the key holder may have more to wrap), the operator designates a custodian. A site that
 * is not connected gets the same work when it next connects (WatchTasks asks on connect), so nothing
 * here needs to be delivered exactly once.
 */
export function keyRelay(d: KeyRelayDeps): EventHandler {
  const push = async (siteId: string | null | undefined) => {
    if (!siteId || !d.hub.isConnected(siteId)) return;
    const site = await siteQ.getSite(d.db, siteId);
    if (!site) return;
    for (const work of await d.custody.workFor(site)) d.hub.send(siteId, keyWorkToProto(work));
  };
  const custodianOf = async (federationId: string) => {
    const fed = await federationQ.getFederation(d.db, federationId);
    return fed ? (await d.custody.custodianOf(fed))?.id : undefined;
  };
  return async (event) => {
    try {
      switch (event.topic) {
        case 'site.enrolled':
        case 'he.custodian_designated': {
          await push(await custodianOf(event.payload.federationId));
          return;
        }
        case 'he.key_bundle_published':
        case 'he.keys_wrapped': {
          const siteIds =
            event.topic === 'he.key_bundle_published' ? event.payload.wrappedSiteIds : event.payload.siteIds;
          for (const siteId of siteIds) await push(siteId);
          // Sites may have enrolled while the key holder was wrapping: it wraps for them next.
          await push(await custodianOf(event.payload.federationId));
          return;
        }
        default:
          return;
      }
    } catch (err) {
      d.log.warn('could not relay key work', { err: err as Error });
    }
  };
}
