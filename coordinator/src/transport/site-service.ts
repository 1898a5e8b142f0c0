import { createHash } from 'node:crypto';
import type {
  ServerReadableStream,
  ServerUnaryCall,
  ServerWritableStream,
  sendUnaryData,
} from '@grpc/grpc-js';
import type * as pb from '@radfed/proto';
import type { Logger } from '@radfed/shared';
import type { AggregatorRegistry } from '../aggregation/registry.js';
import type { BlobStore } from '../blobs/types.js';
import type { KeyCustodyService } from '../custody/service.js';
import {
  DigestMismatchError,
  InvalidRequestError,
  InvalidUpdateError,
  ModelVersionNotFoundError,
  NotInvitedError,
  RoundClosedError,
  RoundNotFoundError,
  StaleModelError,
  UploadProtocolError,
  WrongHeKeyError,
} from '../errors.js';
import type { FederationService } from '../federations/service.js';
import { type IssuedReceipt, receiptFromEntry } from '../ledger/receipts.js';
import type { RoundEngine, SubmittedProvenance } from '../rounds/engine.js';
import type { Db } from '../store/client.js';
import * as federationQ from '../store/queries/federations.js';
import * as roundQ from '../store/queries/rounds.js';
import type { Authenticator, Caller } from './auth.js';
import {
  federationToProto,
  keyBundleViewToProto,
  keyWorkToProto,
  receiptToProto,
  submittedBundleFromProto,
  trainTaskToProto,
} from './convert.js';
import { clientStreaming, type Handlers, serverStreaming, unary } from './handlers.js';
import { getReceiptHandler } from './receipt-lookup.js';
import type { TaskHub } from './task-hub.js';
import { checkUpdateSignature } from './update-signature.js';

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
        const caller = await site(call);
        return receiveUpload(d, caller, call);
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

/**
 * Receives one update stream: a header, then chunks in offset order. Bytes are staged (so a broken
 * stream can resume from GetUploadStatus.received_bytes), checked against the header's digest, and
 * validated by the aggregator before the round engine folds them in. Nothing is counted unless every
 * check passes.
 */
async function receiveUpload(
  d: SiteServiceDeps,
  caller: SiteCaller,
  call: ServerReadableStream<pb.UploadUpdateRequest, pb.UploadUpdateResponse>,
): Promise<pb.UploadUpdateResponse> {
  const siteId = caller.site.id;
  let header: pb.UpdateHeader | undefined;
  let expected = 0;
  let received = 0;
  let stagingKey = '';
  let roundNumber = 0;
  let provenance: SubmittedProvenance | undefined;
  const dropStaging = async () => {
    if (!header) return;
    await d.blobs.delete(stagingKey).catch(() => undefined);
    await roundQ.deleteUpload(d.db, header.roundId, siteId);
  };
  try {
    for await (const msg of call as AsyncIterable<pb.UploadUpdateRequest>) {
      const part = msg.part;
      if (!header) {
        if (part?.$case !== 'header') {
          throw new UploadProtocolError('An upload starts with its header; send UpdateHeader first.');
        }
        header = part.value;
        const checked = await checkHeader(d, caller, header);
        if (checked.duplicate) return checked.duplicate;
        provenance = checkUpdateSignature(caller.site, header);
        expected = checked.expected;
        roundNumber = checked.roundNumber;
        stagingKey = `staging/${header.roundId}/${siteId}`;
        const upload = await roundQ.getUpload(d.db, header.roundId, siteId);
        const offset = Number(header.offset);
        const digest = header.sha256.toString('hex');
        if (offset === 0 || !upload || upload.digest !== digest) {
          if (offset !== 0) {
            throw new UploadProtocolError(
              `Nothing is staged to resume at offset ${offset}; ask GetUploadStatus and start from its received_bytes.`,
            );
          }
          await d.blobs.delete(stagingKey).catch(() => undefined);
          await roundQ.upsertUpload(d.db, {
            roundId: header.roundId,
            siteId,
            stagingKey,
            totalBytes: expected,
            digest,
            receivedBytes: 0,
          });
        } else {
          if (offset !== upload.receivedBytes) {
            throw new UploadProtocolError(
              `The coordinator holds ${upload.receivedBytes} bytes of this update; resume from offset ${upload.receivedBytes}, not ${offset}.`,
            );
          }
          // A crash may have left bytes past what the row records; the row is the truth.
          await d.blobs.truncate(stagingKey, upload.receivedBytes);
        }
        received = offset;
        continue;
      }
      if (part?.$case !== 'chunk') throw new UploadProtocolError('Send the header once, then only chunks.');
      const chunk = part.value;
      if (Number(chunk.offset) !== received) {
        throw new UploadProtocolError(
          `Chunk at offset ${chunk.offset} arrived out of order; the next chunk must start at ${received}. Restart the upload.`,
        );
      }
      if (received + chunk.data.length > expected) {
        throw new UploadProtocolError(
          `The update is longer than the ${expected} bytes declared in its header.`,
        );
      }
      await d.blobs.append(stagingKey, chunk.data);
      received += chunk.data.length;
      await roundQ.setUploadReceived(d.db, header.roundId, siteId, received);
    }
  } catch (err) {
    // Protocol violations discard staged bytes; a merely broken stream keeps them for resuming.
    if (!(err instanceof Error && err.name === 'AbortError') && !call.cancelled) await dropStaging();
    throw err;
  }
  if (!header)
    throw new UploadProtocolError('The upload stream was empty; send a header and the update bytes.');
  if (received !== expected) {
    throw new UploadProtocolError(
      `The stream ended after ${received} of ${expected} bytes; resume from offset ${received}.`,
    );
  }
  // Hashed and folded from the staged blob in chunks: the coordinator never holds a whole update.
  if (!(await blobDigest(d.blobs, stagingKey, received)).equals(header.sha256)) {
    await dropStaging();
    throw new DigestMismatchError();
  }
  const fed = (await federationQ.getFederation(d.db, caller.site.federationId))!;
  let result: Awaited<ReturnType<RoundEngine['submit']>>;
  try {
    // The engine checks the update as it folds it; a malformed update never reaches the running sum.
    result = await d.engine.submit({
      roundId: header.roundId,
      siteId,
      modelVersion: Number(header.modelVersion),
      stagedKey: stagingKey,
      digest: header.sha256.toString('hex'),
      sampleCount: Number(header.sampleCount),
      metrics: header.metrics,
      provenance,
    });
  } catch (err) {
    // A refused update is not resumable: its bytes are wrong, not missing.
    if (err instanceof InvalidUpdateError || err instanceof WrongHeKeyError) await dropStaging();
    throw err;
  }
  await dropStaging();
  d.log.info(`update received for round ${roundNumber}`, {
    federation_id: fed.id,
    round_id: header.roundId,
    site_id: siteId,
  });
  return { receipt: receipt(header, siteId, result.acceptedAt, result.duplicate, result.receipt) };
}

/** SHA-256 of the first `length` bytes of a blob, read in 4 MiB chunks into one buffer. */
async function blobDigest(blobs: BlobStore, key: string, length: number): Promise<Buffer> {
  const hash = createHash('sha256');
  const buffer = new Uint8Array(Math.min(length, 4 << 20));
  for (let at = 0; at < length; at += buffer.length) {
    const part = buffer.subarray(0, Math.min(buffer.length, length - at));
    await blobs.readInto(key, at, part);
    hash.update(part);
  }
  return hash.digest();
}

async function checkHeader(
  d: SiteServiceDeps,
  caller: SiteCaller,
  header: pb.UpdateHeader,
): Promise<{ expected: number; roundNumber: number; duplicate?: pb.UploadUpdateResponse }> {
  const round = await roundQ.getRound(d.db, header.roundId);
  if (!round || round.federationId !== caller.site.federationId) throw new RoundNotFoundError(header.roundId);
  const participant = await roundQ.getParticipant(d.db, round.id, caller.site.id);
  if (!participant) throw new NotInvitedError(round.number);
  if (header.sha256.length !== 32)
    throw new UploadProtocolError("The header needs the update's 32-byte sha256.");
  if (participant.state === 'submitted' && participant.updateDigest === header.sha256.toString('hex')) {
    return {
      expected: 0,
      roundNumber: round.number,
      duplicate: {
        receipt: receipt(
          header,
          caller.site.id,
          participant.updatedAt,
          true,
          await receiptFromEntry(d.db, round.federationId, round.id, caller.site.id),
        ),
      },
    };
  }
  if (round.state !== 'open') throw new RoundClosedError(round.number, round.state);
  if (Number(header.modelVersion) !== round.modelVersion) {
    throw new StaleModelError(Number(header.modelVersion), round.modelVersion ?? 0);
  }
  const fed = (await federationQ.getFederation(d.db, round.federationId))!;
  const aggregator = await d.aggregators.forFederation(fed);
  if (header.encoding !== aggregator.encoding) {
    throw new UploadProtocolError(
      `This federation takes "${aggregator.encoding}" updates, not "${header.encoding}"; check the agent version.`,
    );
  }
  const samples = Number(header.sampleCount);
  if (!Number.isInteger(samples) || samples < 1 || samples > fed.maxSamplesPerSite) {
    throw new UploadProtocolError(
      `The sample count must be between 1 and ${fed.maxSamplesPerSite} (the federation's cap); got ${header.sampleCount}.`,
    );
  }
  for (const [k, v] of Object.entries(header.metrics)) {
    if (!Number.isFinite(v)) throw new UploadProtocolError(`Metric "${k}" is not a finite number.`);
  }
  const expected = aggregator.updateBytes(fed.parameterCount);
  if (Number(header.totalBytes) !== expected) {
    throw new UploadProtocolError(
      `This federation's updates are ${expected} bytes; the header declares ${header.totalBytes}. Check the agent runs the federation's model spec.`,
    );
  }
  return { expected, roundNumber: round.number };
}

function receipt(
  header: pb.UpdateHeader,
  siteId: string,
  acceptedAt: Date,
  duplicate: boolean,
  issued: IssuedReceipt | undefined,
): pb.Receipt {
  return receiptToProto(
    { roundId: header.roundId, siteId, updateDigest: header.sha256, duplicate },
    issued,
    acceptedAt,
  );
}

export type { sendUnaryData };
