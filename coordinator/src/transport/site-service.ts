import type { ServerReadableStream, ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js';
import type * as pb from '@radfed/proto';
import type { Logger } from '@radfed/shared';
import type { AggregatorRegistry } from '../aggregation/registry.js';
import type { BlobStore } from '../blobs/types.js';
import type { KeyCustodyService } from '../custody/service.js';
import {
  InvalidRequestError,
  ModelVersionNotFoundError,
  NotInvitedError,
  RoundNotFoundError,
} from '../errors.js';
import type { FederationService } from '../federations/service.js';
import type { RoundEngine } from '../rounds/engine.js';
import type { Db } from '../store/client.js';
import * as federationQ from '../store/queries/federations.js';
import * as roundQ from '../store/queries/rounds.js';
import type { Authenticator, Caller } from './auth.js';
import {
  federationToProto,
  keyBundleViewToProto,
  keyWorkToProto,
  submittedBundleFromProto,
  trainTaskToProto,
} from './convert.js';
import { clientStreaming, type Handlers, serverStreaming, unary } from './handlers.js';
import { getReceiptHandler } from './receipt-lookup.js';
import type { TaskHub } from './task-hub.js';
import { receiveUpload } from './upload.js';

/** Bytes per chunk the coordinator streams models in. */
export const DOWNLOAD_CHUNK_BYTES = 256 * 1024;

export interface SiteServiceDeps {
  db: Db;
  blobs: BlobStore;
  aggregators: AggregatorRegistry;
  custody: KeyCustodyService;
  engine: RoundEngine;
  federations: FederationService;
  auth: Authenticator;
  hub: TaskHub;
  caCertPem: string;
  log: Logger;
  /** An upload that sends nothing for this long fails with DEADLINE_EXCEEDED (staged bytes stay). */
  uploadInactivityMs: number;
}

type SiteCaller = Extract<Caller, { role: 'site' }>;

/** SiteService: what agents call. Every method but Enrol requires the site's own certificate. */
export function siteService(d: SiteServiceDeps): Handlers<pb.SiteServiceServer> {
  const site = async (call: Parameters<Authenticator['require']>[0]) =>
    (await d.auth.require(call, ['site'])) as SiteCaller;

  return {
    enrol: unary(d.log, 'Enrol', async (call: ServerUnaryCall<pb.EnrolRequest, pb.EnrolResponse>) => {
      const req = call.request;
      if (!req.token)
        throw new InvalidRequestError('Enrolment needs the token your operator gave you (--token).');
      if (!req.csrPem)
        throw new InvalidRequestError('Enrolment needs a certificate request; upgrade the agent.');
      const result = await d.federations.enrol({
        token: req.token,
        csrPem: req.csrPem,
        signingPublicKey: req.signingPublicKey,
        keyWrapPublicKey: req.keyWrapPublicKey,
        agentVersion: req.agentVersion,
      });
      d.log.info('site enrolled', {
        federation_id: result.federation.id,
        site_id: result.site.id,
        name: result.site.name,
      });
      return {
        siteId: result.site.id,
        federationId: result.federation.id,
        siteName: result.site.name,
        certificatePem: result.certificatePem,
        caCertificatePem: d.caCertPem,
        federation: federationToProto(result.federation),
      };
    }),

    watchTasks: serverStreaming(
      d.log,
      'WatchTasks',
      async (call: ServerWritableStream<pb.WatchTasksRequest, pb.WatchTasksResponse>) => {
        const { site: row } = await site(call);
        await d.auth.touch(row.id, call.request.backend || undefined);
        const remove = d.hub.add(row.id, call);
        d.log.info('agent connected', {
          federation_id: row.federationId,
          site_id: row.id,
          backend: call.request.backend,
        });
        const done = new Promise<void>((resolve) => {
          const finish = () => {
            remove();
            resolve();
          };
          call.on('cancelled', finish);
          call.on('close', finish);
          call.on('finish', finish);
          call.on('error', finish);
        });
        const fed = (await federationQ.getFederation(d.db, row.federationId))!;
        // Key work first: a task that needs the HE key finds it already on its way.
        for (const work of await d.custody.workFor(row)) call.write(keyWorkToProto(work));
        for (const round of await roundQ.listPendingTasks(d.db, row.id)) {
          call.write({ event: { $case: 'train', value: trainTaskToProto(round, fed) } });
        }
        await done;
        d.log.info('agent disconnected', { federation_id: row.federationId, site_id: row.id });
      },
    ),

    downloadModel: serverStreaming(
      d.log,
      'DownloadModel',
      async (call: ServerWritableStream<pb.DownloadModelRequest, pb.DownloadModelResponse>) => {
        const { site: row } = await site(call);
        const req = call.request;
        if (req.federationId && req.federationId !== row.federationId) {
          throw new NotInvitedError(0);
        }
        const version = Number(req.modelVersion);
        const fed = (await federationQ.getFederation(d.db, row.federationId))!;
        const mv = await federationQ.getModelVersion(d.db, fed.id, version);
        if (!mv) throw new ModelVersionNotFoundError(version);
        const total = mv.blobKey ? ((await d.blobs.size(mv.blobKey)) ?? 0) : 0;
        const encoding = mv.blobKey ? (await d.aggregators.forFederation(fed)).encoding : 'seed';
        const siteCount = mv.roundId
          ? (await roundQ.listParticipants(d.db, mv.roundId)).filter((p) => p.state === 'submitted').length
          : 0;
        const offset = Number(req.offset);
        if (offset < 0 || offset > total) {
          throw new InvalidRequestError(
            `Offset ${offset} is outside model version ${version} (${total} bytes); resume from 0.`,
          );
        }
        call.write({
          part: {
            $case: 'header',
            value: {
              modelVersion: BigInt(version),
              totalBytes: BigInt(total),
              sha256: Buffer.from(mv.digest ?? '', 'hex'),
              totalSamples: BigInt(mv.totalSamples),
              parameterCount: fed.parameterCount,
              encoding,
              siteCount,
            },
          },
        });
        for (let at = offset; mv.blobKey && at < total; at += DOWNLOAD_CHUNK_BYTES) {
          const data = await d.blobs.read(mv.blobKey, at, DOWNLOAD_CHUNK_BYTES);
          const ok = call.write({
            part: { $case: 'chunk', value: { offset: BigInt(at), data: Buffer.from(data) } },
          });
          if (!ok) await new Promise((r) => call.once('drain', r));
          if (call.cancelled) return;
        }
        call.end();
      },
    ),

    getUploadStatus: unary(
      d.log,
      'GetUploadStatus',
      async (call: ServerUnaryCall<pb.GetUploadStatusRequest, pb.GetUploadStatusResponse>) => {
        const { site: row } = await site(call);
        const round = await roundQ.getRound(d.db, call.request.roundId);
        if (!round) throw new RoundNotFoundError(call.request.roundId);
        const participant = await roundQ.getParticipant(d.db, round.id, row.id);
        if (!participant) throw new NotInvitedError(round.number);
        const upload = await roundQ.getUpload(d.db, round.id, row.id);
        return {
          receivedBytes: BigInt(upload?.receivedBytes ?? 0),
          sha256: Buffer.from(upload?.digest ?? participant.updateDigest ?? '', 'hex'),
          accepted: participant.state === 'submitted',
        };
      },
    ),

    uploadUpdate: clientStreaming(
      d.log,
      'UploadUpdate',
      async (call: ServerReadableStream<pb.UploadUpdateRequest, pb.UploadUpdateResponse>) => {
        const { site: row } = await site(call);
        return receiveUpload({ ...d, inactivityMs: d.uploadInactivityMs }, row, call);
      },
    ),

    declineTask: unary(
      d.log,
      'DeclineTask',
      async (call: ServerUnaryCall<pb.DeclineTaskRequest, pb.DeclineTaskResponse>) => {
        const { site: row } = await site(call);
        const reason = call.request.reason.trim().slice(0, 1000);
        if (!reason)
          throw new InvalidRequestError('Say why the site declines; the operator sees the reason.');
        await d.engine.decline(call.request.roundId, row.id, reason);
        return {};
      },
    ),

    publishKeyBundle: unary(
      d.log,
      'PublishKeyBundle',
      async (call: ServerUnaryCall<pb.PublishKeyBundleRequest, pb.PublishKeyBundleResponse>) => {
        const { site: row } = await site(call);
        if (!call.request.bundle) throw new InvalidRequestError('PublishKeyBundle needs a bundle.');
        const out = await d.custody.publish(row, submittedBundleFromProto(call.request.bundle));
        d.log.info('HE key bundle published', {
          federation_id: row.federationId,
          site_id: row.id,
          key_id: out.keyId,
          wrapped: out.stored.length,
        });
        return { keyId: out.keyId, wrappedKeysStored: out.stored.length };
      },
    ),

    getReceipt: getReceiptHandler(d),

    getKeyBundle: unary(
      d.log,
      'GetKeyBundle',
      async (call: ServerUnaryCall<pb.GetKeyBundleRequest, pb.GetKeyBundleResponse>) => {
        const { site: row } = await site(call);
        if (call.request.federationId && call.request.federationId !== row.federationId) {
          throw new InvalidRequestError('A site reads the key bundle of its own federation only.');
        }
        return keyBundleViewToProto(await d.custody.bundleFor(row));
      },
    ),
  };
}
