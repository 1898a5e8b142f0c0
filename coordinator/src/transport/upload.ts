/**
 * SiteService.UploadUpdate: one update stream, a header and then chunks in offset order.
 *
 * Bytes are staged, so a broken or stalled stream resumes from GetUploadStatus.received_bytes with a
 * header whose offset is that count. The round rules (open, current model version, sample cap, not a
 * duplicate) are the rounds module's ({@link admitUpdate}); this module checks only what belongs to
 * the wire: the header's shape, the encoding, the declared size, chunk order, the digest.
 * Nothing is counted unless every check passes, and the coordinator never holds a whole update.
 */
import { createHash } from 'node:crypto';
import type { ServerReadableStream } from '@grpc/grpc-js';
import type * as pb from '@radfed/proto';
import type { Logger } from '@radfed/shared';
import type { AggregatorRegistry } from '../aggregation/registry.js';
import type { BlobStore } from '../blobs/types.js';
import {
  DigestMismatchError,
  InvalidUpdateError,
  UploadProtocolError,
  UploadStalledError,
  WrongHeKeyError,
} from '../errors.js';
import type { IssuedReceipt } from '../ledger/receipts.js';
import { admitUpdate } from '../rounds/admission.js';
import type { RoundEngine, SubmittedProvenance } from '../rounds/engine.js';
import type { Db } from '../store/client.js';
import * as roundQ from '../store/queries/rounds.js';
import type { SiteRow } from '../store/queries/sites.js';
import { receiptToProto } from './convert.js';
import { checkUpdateSignature } from './update-signature.js';

export interface UploadDeps {
  db: Db;
  blobs: BlobStore;
  aggregators: AggregatorRegistry;
  engine: RoundEngine;
  log: Logger;
  /** An upload silent for this long fails with DEADLINE_EXCEEDED; its staged bytes stay resumable. */
  inactivityMs: number;
}

type UploadCall = ServerReadableStream<pb.UploadUpdateRequest, pb.UploadUpdateResponse>;

/** A header that passed every check: what the stream must deliver. */
interface AcceptedHeader {
  header: pb.UpdateHeader;
  expected: number;
  roundNumber: number;
  provenance: SubmittedProvenance | undefined;
}

/** Receives one update stream from `site` and hands it to the round engine; returns the receipt. */
export async function receiveUpload(
  d: UploadDeps,
  site: SiteRow,
  call: UploadCall,
): Promise<pb.UploadUpdateResponse> {
  let accepted: AcceptedHeader | undefined;
  let received = 0;
  const stagingKey = (roundId: string) => `staging/${roundId}/${site.id}`;
  const dropStaging = async () => {
    if (!accepted) return;
    await d.blobs.delete(stagingKey(accepted.header.roundId)).catch(() => undefined);
    await roundQ.deleteUpload(d.db, accepted.header.roundId, site.id);
  };
  try {
    const stalled = () => new UploadStalledError(d.inactivityMs / 1000, received);
    for await (const msg of messages(call, d.inactivityMs, stalled)) {
      const part = msg.part;
      if (!accepted) {
        if (part?.$case !== 'header') {
          throw new UploadProtocolError('An upload starts with its header; send UpdateHeader first.');
        }
        const checked = await checkHeader(d, site, part.value);
        if ('duplicate' in checked) return checked.duplicate;
        accepted = checked;
        received = await openStaging(d, site, accepted, stagingKey(accepted.header.roundId));
      } else {
        if (part?.$case !== 'chunk') throw new UploadProtocolError('Send the header once, then only chunks.');
        const chunk = part.value;
        if (Number(chunk.offset) !== received) {
          throw new UploadProtocolError(
            `Chunk at offset ${chunk.offset} arrived out of order; the next chunk must start at ${received}. Restart the upload.`,
          );
        }
        if (received + chunk.data.length > accepted.expected) {
          throw new UploadProtocolError(
            `The update is longer than the ${accepted.expected} bytes declared in its header.`,
          );
        }
        await d.blobs.append(stagingKey(accepted.header.roundId), chunk.data);
        received += chunk.data.length;
        await roundQ.setUploadReceived(d.db, accepted.header.roundId, site.id, received);
      }
    }
  } catch (err) {
    // Protocol violations discard staged bytes; a broken, cancelled or stalled stream keeps them.
    const resumable =
      call.cancelled ||
      err instanceof UploadStalledError ||
      (err instanceof Error && err.name === 'AbortError');
    if (!resumable) await dropStaging();
    throw err;
  }
  if (!accepted)
    throw new UploadProtocolError('The upload stream was empty; send a header and the update bytes.');
  const { header, expected } = accepted;
  if (received !== expected) {
    throw new UploadProtocolError(
      `The stream ended after ${received} of ${expected} bytes; resume from offset ${received}.`,
    );
  }
  const staged = stagingKey(header.roundId);
  if (!(await blobDigest(d.blobs, staged, received)).equals(header.sha256)) {
    await dropStaging();
    throw new DigestMismatchError();
  }
  let result: Awaited<ReturnType<RoundEngine['submit']>>;
  try {
    // The engine checks the update as it folds it; a malformed update never reaches the running sum.
    result = await d.engine.submit({
      roundId: header.roundId,
      siteId: site.id,
      modelVersion: Number(header.modelVersion),
      stagedKey: staged,
      digest: header.sha256.toString('hex'),
      sampleCount: Number(header.sampleCount),
      metrics: header.metrics,
      provenance: accepted.provenance,
    });
  } catch (err) {
    // A refused update is not resumable: its bytes are wrong, not missing.
    if (err instanceof InvalidUpdateError || err instanceof WrongHeKeyError) await dropStaging();
    throw err;
  }
  await dropStaging();
  d.log.info(`update received for round ${accepted.roundNumber}`, {
    federation_id: site.federationId,
    round_id: header.roundId,
    site_id: site.id,
  });
  return { receipt: receipt(header, site.id, result.acceptedAt, result.duplicate, result.receipt) };
}

/**
 * Checks a header: the round rules (through {@link admitUpdate}), then what only the wire carries.
 * Returns the receipt outright for an update already accepted.
 */
async function checkHeader(
  d: UploadDeps,
  site: SiteRow,
  header: pb.UpdateHeader,
): Promise<AcceptedHeader | { duplicate: pb.UploadUpdateResponse }> {
  if (header.sha256.length !== 32)
    throw new UploadProtocolError("The header needs the update's 32-byte sha256.");
  const admission = await admitUpdate(d.db, {
    roundId: header.roundId,
    siteId: site.id,
    federationId: site.federationId,
    modelVersion: Number(header.modelVersion),
    digest: header.sha256.toString('hex'),
    sampleCount: Number(header.sampleCount),
  });
  if (admission.duplicate) {
    return {
      duplicate: {
        receipt: receipt(header, site.id, admission.acceptedAt, true, admission.receipt),
      },
    };
  }
  const fed = admission.federation;
  const aggregator = await d.aggregators.forFederation(fed);
  if (header.encoding !== aggregator.encoding) {
    throw new UploadProtocolError(
      `This federation takes "${aggregator.encoding}" updates, not "${header.encoding}"; check the agent version.`,
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
  const provenance = checkUpdateSignature(site, header);
  return { header, expected, roundNumber: admission.round.number, provenance };
}

/**
 * Starts staging at offset 0, or resumes staged bytes at the header's offset (which must be what the
 * coordinator holds). Returns the offset the next chunk must start at.
 */
async function openStaging(
  d: UploadDeps,
  site: SiteRow,
  { header, expected }: AcceptedHeader,
  key: string,
): Promise<number> {
  const upload = await roundQ.getUpload(d.db, header.roundId, site.id);
  const offset = Number(header.offset);
  const digest = header.sha256.toString('hex');
  if (offset === 0 || !upload || upload.digest !== digest) {
    if (offset !== 0) {
      throw new UploadProtocolError(
        `Nothing is staged to resume at offset ${offset}; ask GetUploadStatus and start from its received_bytes.`,
      );
    }
    await d.blobs.delete(key).catch(() => undefined);
    await roundQ.upsertUpload(d.db, {
      roundId: header.roundId,
      siteId: site.id,
      stagingKey: key,
      totalBytes: expected,
      digest,
      receivedBytes: 0,
    });
    return 0;
  }
  if (offset !== upload.receivedBytes) {
    throw new UploadProtocolError(
      `The coordinator holds ${upload.receivedBytes} bytes of this update; resume from offset ${upload.receivedBytes}, not ${offset}.`,
    );
  }
  // A crash may have left bytes past what the row records; the row is the truth.
  await d.blobs.truncate(key, upload.receivedBytes);
  return offset;
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

/**
 * The stream's messages, failing with `stalled()` when the site sends nothing for `ms` (time the
 * consumer spends on a message is not counted) and with a cancellation error when the client
 * cancels: grpc-js destroys a cancelled stream without an error, which can leave a plain
 * `for await` waiting forever.
 */
async function* messages<T>(
  call: ServerReadableStream<T, unknown>,
  ms: number,
  stalled: () => Error,
): AsyncGenerator<T> {
  const iterator = (call as AsyncIterable<T>)[Symbol.asyncIterator]();
  let onCancel = () => {};
  const cancelled = new Promise<never>((_, reject) => {
    onCancel = () => reject(new Error('The client cancelled the upload.'));
  });
  cancelled.catch(() => undefined);
  call.once('cancelled', onCancel);
  if (call.cancelled) onCancel();
  let ended = false;
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const silence = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(stalled()), ms);
      });
      const pending = iterator.next();
      // If the race is lost, this read is abandoned; it must not surface as an unhandled rejection.
      pending.catch(() => undefined);
      const next = await Promise.race([pending, cancelled, silence]).finally(() => clearTimeout(timer));
      if (next.done) {
        ended = true;
        return;
      }
      yield next.value;
    }
  } finally {
    call.off('cancelled', onCancel);
    // Stop reading what is left (not through iterator.return(), which waits for an abandoned read).
    if (!ended) call.destroy();
  }
}
