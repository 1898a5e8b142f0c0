import type { ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js';
import type * as pb from '@radfed/proto';
import type { Logger } from '@radfed/shared';
import type { KeyCustodyService } from '../custody/service.js';
import { InvalidRequestError, RoundNotFoundError } from '../errors.js';
import { type EventBus, isRoundEvent } from '../events/types.js';
import type { FederationService } from '../federations/service.js';
import type { RoundEngine } from '../rounds/engine.js';
import type { Db } from '../store/client.js';
import * as roundQ from '../store/queries/rounds.js';
import type { Authenticator } from './auth.js';
import { federationToProto, modelSpecFromProto, roundToProto, siteToProto } from './convert.js';
import { type Handlers, serverStreaming, unary } from './handlers.js';
import type { TaskHub } from './task-hub.js';

export interface OperatorServiceDeps {
  db: Db;
  engine: RoundEngine;
  federations: FederationService;
  custody: KeyCustodyService;
  auth: Authenticator;
  hub: TaskHub;
  bus: EventBus;
  log: Logger;
  /** Model spec used when CreateFederation leaves it out. */
  defaultModelSpec: () => unknown;
}

const OPERATOR = ['operator'] as const;

/** OperatorService: federations, invitations, rounds. Operator certificates only. */
export function operatorService(d: OperatorServiceDeps): Handlers<pb.OperatorServiceServer> {
  const operator = (call: Parameters<Authenticator['require']>[0]) => d.auth.require(call, OPERATOR);

  const roundWithParticipants = async (id: string) => {
    const round = await roundQ.getRound(d.db, id);
    if (!round) throw new RoundNotFoundError(id);
    return roundToProto(round, await roundQ.listParticipants(d.db, id));
  };

  return {
    createFederation: unary(
      d.log,
      'CreateFederation',
      async (call: ServerUnaryCall<pb.CreateFederationRequest, pb.CreateFederationResponse>) => {
        await operator(call);
        const r = call.request;
        const row = await d.federations.create({
          name: r.name,
          modelSpec: modelSpecFromProto(r.modelSpec) ?? d.defaultModelSpec(),
          // proto3 sends an unset field as 0 or ''; the spec schema fills in the defaults.
          hePreset: r.hePreset || undefined,
          minSites: r.minSites || undefined,
          roundDeadlineSeconds: r.roundDeadlineSeconds || undefined,
          maxSamplesPerSite: r.maxSamplesPerSite || undefined,
          maxSites: r.maxSites || undefined,
          maxAbsWeight: r.maxAbsWeight || undefined,
        });
        d.log.info('federation created', { federation_id: row.id, name: row.name });
        return { federation: federationToProto(row) };
      },
    ),

    getFederation: unary(
      d.log,
      'GetFederation',
      async (call: ServerUnaryCall<pb.GetFederationRequest, pb.GetFederationResponse>) => {
        await operator(call);
        const row = await d.federations.resolve(call.request.federationId);
        return { federation: federationToProto(row, await d.custody.published(row)) };
      },
    ),

    listFederations: unary(
      d.log,
      'ListFederations',
      async (call: ServerUnaryCall<pb.ListFederationsRequest, pb.ListFederationsResponse>) => {
        await operator(call);
        const rows = await d.federations.list();
        return {
          federations: await Promise.all(
            rows.map(async (r) => federationToProto(r, await d.custody.published(r))),
          ),
        };
      },
    ),

    inviteSite: unary(
      d.log,
      'InviteSite',
      async (call: ServerUnaryCall<pb.InviteSiteRequest, pb.InviteSiteResponse>) => {
        await operator(call);
        const r = call.request;
        const invite = await d.federations.invite(r.federationId, r.siteName, r.ttlSeconds || undefined);
        d.log.info('site invited', { federation_id: invite.federation.id, site: invite.siteName });
        return { token: invite.token, expiresAt: invite.expiresAt, siteName: invite.siteName };
      },
    ),

    listSites: unary(
      d.log,
      'ListSites',
      async (call: ServerUnaryCall<pb.ListSitesRequest, pb.ListSitesResponse>) => {
        await operator(call);
        const rows = await d.federations.listSites(call.request.federationId);
        return { sites: rows.map((s) => siteToProto(s, d.hub.isConnected(s.id))) };
      },
    ),

    revokeSite: unary(
      d.log,
      'RevokeSite',
      async (call: ServerUnaryCall<pb.RevokeSiteRequest, pb.RevokeSiteResponse>) => {
        await operator(call);
        const row = await d.federations.revoke(call.request.siteId, call.request.reason);
        return { site: siteToProto(row, d.hub.isConnected(row.id)) };
      },
    ),

    scheduleRounds: unary(
      d.log,
      'ScheduleRounds',
      async (call: ServerUnaryCall<pb.ScheduleRoundsRequest, pb.ScheduleRoundsResponse>) => {
        await operator(call);
        const fed = await d.federations.resolve(call.request.federationId);
        const rows = await d.engine.schedule(fed.id, call.request.count || 1);
        return { rounds: rows.map((r) => roundToProto(r, [])) };
      },
    ),

    listRounds: unary(
      d.log,
      'ListRounds',
      async (call: ServerUnaryCall<pb.ListRoundsRequest, pb.ListRoundsResponse>) => {
        await operator(call);
        const fed = await d.federations.resolve(call.request.federationId);
        const rounds = await roundQ.listRounds(d.db, fed.id);
        const parts = await roundQ.listParticipantsFor(
          d.db,
          rounds.map((r) => r.id),
        );
        return {
          rounds: rounds.map((r) =>
            roundToProto(
              r,
              parts.filter((p) => p.roundId === r.id),
            ),
          ),
        };
      },
    ),

    getRound: unary(
      d.log,
      'GetRound',
      async (call: ServerUnaryCall<pb.GetRoundRequest, pb.GetRoundResponse>) => {
        await operator(call);
        return { round: await roundWithParticipants(call.request.roundId) };
      },
    ),

    setKeyCustodian: unary(
      d.log,
      'SetKeyCustodian',
      async (call: ServerUnaryCall<pb.SetKeyCustodianRequest, pb.SetKeyCustodianResponse>) => {
        await operator(call);
        if (!call.request.site) throw new InvalidRequestError('Name the site to designate as key custodian.');
        const row = await d.custody.designate(call.request.federationId, call.request.site);
        d.log.info('key custodian designated', {
          federation_id: row.id,
          site_id: row.keyCustodianSiteId ?? '',
        });
        return { federation: federationToProto(row, await d.custody.published(row)) };
      },
    ),

    cancelRound: unary(
      d.log,
      'CancelRound',
      async (call: ServerUnaryCall<pb.CancelRoundRequest, pb.CancelRoundResponse>) => {
        await operator(call);
        const row = await d.engine.cancel(call.request.roundId, call.request.reason);
        return { round: await roundWithParticipants(row.id) };
      },
    ),

    watchRounds: serverStreaming(
      d.log,
      'WatchRounds',
      async (call: ServerWritableStream<pb.WatchRoundsRequest, pb.WatchRoundsResponse>) => {
        await operator(call);
        if (!call.request.federationId) throw new InvalidRequestError('Name the federation to watch.');
        const fed = await d.federations.resolve(call.request.federationId);
        // Serialise reads so messages leave in event order.
        let chain = Promise.resolve();
        const sub = await d.bus.subscribe((event) => {
          if (!isRoundEvent(event) || event.payload.federationId !== fed.id) return;
          const { roundId } = event.payload;
          chain = chain
            .then(async () => {
              if (call.cancelled || call.writableEnded) return;
              call.write({ round: await roundWithParticipants(roundId), event: event.topic });
            })
            .catch((err: unknown) => d.log.warn('watch write failed', { err: err as Error }));
        });
        // Current state first, so a watcher that joins mid-round sees where things stand.
        for (const r of await roundQ.listRoundsInStates(d.db, ['open', 'sealing'])) {
          if (r.federationId === fed.id)
            call.write({ round: await roundWithParticipants(r.id), event: 'snapshot' });
        }
        await new Promise<void>((resolve) => {
          call.on('cancelled', resolve);
          call.on('close', resolve);
          call.on('finish', resolve);
        });
        await sub.unsubscribe();
      },
    ),
  };
}
