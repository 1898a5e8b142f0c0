import { createHash } from 'node:crypto';
import { Metadata, status } from '@grpc/grpc-js';
import {
  channelCredentials,
  channelOptions,
  type EnrolRequest,
  type EnrolResponse,
  type ModelHeader,
  RpcError,
  type SignedUpdate,
  SiteServiceClient,
  type TlsMaterial,
  unaryCall,
  type WatchTasksResponse,
} from '@radfed/proto';
import type { SignedUpdateFacts } from '@radfed/shared';
import { ModelTransferError } from '../errors.js';
import {
  type HeKeyBundle,
  type KeyBundleView,
  type KeyEvent,
  keyBundleToProto,
  keyBundleViewFromProto,
  keyEventFromProto,
  type ModelInfo,
  modelInfoFromProto,
  receiptFromProto,
  type TrainingTask,
  trainingTaskFromProto,
  type UpdateReceipt,
} from './convert.js';

/** Bytes per upload chunk; well under the coordinator's default 4 MiB message bound. */
export const UPLOAD_CHUNK_BYTES = 256 * 1024;
const TRANSFER_ATTEMPTS = 5;

export interface UploadInput {
  roundId: string;
  modelVersion: number;
  data: Uint8Array;
  sampleCount: number;
  metrics: Record<string, number>;
  encoding: string;
  /** Hex Merkle root of the training files (the dataset's IngestReport.commitment); signed. */
  datasetCommitment: string;
  /** Signs the update's facts with the site's enrolled key (see {@link updateSigner}). */
  sign: UpdateSigner;
}

/** Signs what a site submits; returns the 64-byte Ed25519 signature. */
export type UpdateSigner = (facts: SignedUpdateFacts) => Uint8Array;

export type { KeyEvent } from './convert.js';

export interface DownloadedModel {
  header: ModelInfo;
  data: Uint8Array;
}

/**
 * The agent's side of SiteService. Agents only dial out. Downloads and uploads are chunked and
 * resume from the last byte the other side holds after a broken connection.
 */
export class SiteClient {
  private readonly client: SiteServiceClient;

  constructor(
    readonly address: string,
    tls: TlsMaterial,
  ) {
    this.client = new SiteServiceClient(address, channelCredentials(tls), channelOptions());
  }

  close(): void {
    this.client.close();
  }

  enrol(req: EnrolRequest): Promise<EnrolResponse> {
    return unaryCall(this.client, this.client.enrol, req, new Metadata());
  }

  /**
   * Opens the task stream. Resolves `done` when the stream ends for any reason (with the error, if
   * any) so the caller can reconnect.
   */
  watchTasks(
    req: { agentVersion: string; backend: string },
    onTask: (task: TrainingTask) => void,
    onHeartbeat: () => void = () => {},
    onKey: (event: KeyEvent) => void = () => {},
  ): { done: Promise<RpcError | undefined>; cancel(): void } {
    const call = this.client.watchTasks(req);
    const done = new Promise<RpcError | undefined>((resolve) => {
      call.on('data', (msg: WatchTasksResponse) => {
        const event = msg.event;
        if (event?.$case === 'train') onTask(trainingTaskFromProto(event.value));
        else if (event?.$case === 'keyRequest' || event?.$case === 'keyBundle')
          onKey(keyEventFromProto(event));
        else onHeartbeat();
      });
      call.on('end', () => resolve(undefined));
      call.on('error', (err: Error & { code?: number }) =>
        resolve(err.code === status.CANCELLED ? undefined : RpcError.from(err)),
      );
    });
    return { done, cancel: () => call.cancel() };
  }

  /**
   * The header of a model version without its bytes (the stream is cancelled after the header), or
   * undefined when the coordinator has no such version.
   */
  async modelHeader(federationId: string, modelVersion: number): Promise<ModelInfo | undefined> {
    return new Promise<ModelInfo | undefined>((resolve, reject) => {
      const call = this.client.downloadModel({
        federationId,
        modelVersion: BigInt(modelVersion),
        offset: 0n,
      });
      let settled = false;
      call.on('data', (msg: { part?: { $case: string; value: unknown } }) => {
        if (msg.part?.$case === 'header' && !settled) {
          settled = true;
          resolve(modelInfoFromProto(msg.part.value as ModelHeader));
          call.cancel();
        }
      });
      call.on(
        'end',
        () => !settled && reject(new ModelTransferError('the coordinator sent no model header')),
      );
      call.on('error', (err: Error & { code?: number }) => {
        if (settled) return;
        settled = true;
        if (err.code === status.NOT_FOUND) resolve(undefined);
        else reject(RpcError.from(err));
      });
    });
  }

  /** Downloads a model version whole, resuming after broken streams, and checks its sha256. */
  async downloadModel(federationId: string, modelVersion: number): Promise<DownloadedModel> {
    let header: ModelHeader | undefined;
    const parts: Buffer[] = [];
    let received = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          const call = this.client.downloadModel({
            federationId,
            modelVersion: BigInt(modelVersion),
            offset: BigInt(received),
          });
          call.on(
            'data',
            (msg: {
              part?:
                | { $case: 'header'; value: ModelHeader }
                | { $case: 'chunk'; value: { offset: bigint; data: Buffer } };
            }) => {
              if (msg.part?.$case === 'header') header = msg.part.value;
              else if (msg.part?.$case === 'chunk') {
                if (Number(msg.part.value.offset) !== received) {
                  call.cancel();
                  reject(
                    new ModelTransferError(
                      `model chunk at ${msg.part.value.offset} arrived out of order (expected ${received})`,
                    ),
                  );
                  return;
                }
                parts.push(msg.part.value.data);
                received += msg.part.value.data.length;
              }
            },
          );
          call.on('end', resolve);
          call.on('error', (err) => reject(RpcError.from(err)));
        });
        break;
      } catch (err) {
        const rpc = err instanceof RpcError ? err : undefined;
        if (!rpc?.retryable || attempt >= TRANSFER_ATTEMPTS) throw err;
        await sleep(500 * attempt);
      }
    }
    if (!header) throw new ModelTransferError('the coordinator sent no model header');
    const data = Buffer.concat(parts);
    if (data.length !== Number(header.totalBytes)) {
      throw new ModelTransferError(
        `model v${modelVersion}: got ${data.length} of ${header.totalBytes} bytes`,
      );
    }
    if (data.length > 0 && !createHash('sha256').update(data).digest().equals(header.sha256)) {
      throw new ModelTransferError(
        `model v${modelVersion} does not match its sha256; it will be downloaded again`,
      );
    }
    return { header: modelInfoFromProto(header), data };
  }

  /** Uploads an update, resuming from what the coordinator holds after a broken stream. */
  async upload(input: UploadInput): Promise<UpdateReceipt> {
    const digest = createHash('sha256').update(input.data).digest();
    const signed = signedUpdate(input, digest);
    let offset = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.uploadFrom(input, digest, signed, offset);
      } catch (err) {
        const rpc = RpcError.from(err);
        if (!rpc.retryable || attempt >= TRANSFER_ATTEMPTS) throw rpc;
        await sleep(500 * attempt);
        const st = await unaryCall(
          this.client,
          this.client.getUploadStatus,
          { roundId: input.roundId },
          new Metadata(),
        );
        offset = st.sha256.equals(digest) ? Number(st.receivedBytes) : 0;
      }
    }
  }

  private uploadFrom(
    input: UploadInput,
    digest: Buffer,
    signed: SignedUpdate,
    offset: number,
  ): Promise<UpdateReceipt> {
    return new Promise((resolve, reject) => {
      const call = this.client.uploadUpdate((err, res) =>
        err ? reject(RpcError.from(err)) : resolve(receiptFromProto(res!.receipt!)),
      );
      call.write({
        part: {
          $case: 'header',
          value: {
            roundId: input.roundId,
            modelVersion: BigInt(input.modelVersion),
            totalBytes: BigInt(input.data.byteLength),
            sha256: digest,
            sampleCount: BigInt(input.sampleCount),
            metrics: input.metrics,
            offset: BigInt(offset),
            encoding: input.encoding,
            signed,
          },
        },
      });
      for (let at = offset; at < input.data.byteLength; at += UPLOAD_CHUNK_BYTES) {
        const data = Buffer.from(
          input.data.buffer,
          input.data.byteOffset + at,
          Math.min(UPLOAD_CHUNK_BYTES, input.data.byteLength - at),
        );
        call.write({ part: { $case: 'chunk', value: { offset: BigInt(at), data } } });
      }
      call.end();
    });
  }

  async decline(roundId: string, reason: string): Promise<void> {
    await unaryCall(this.client, this.client.declineTask, { roundId, reason }, new Metadata());
  }

  /**
   * The receipt of this site's accepted update in a round, fetched again from the coordinator's
   * ledger (after a crash or a lost answer); undefined when the ledger holds no accepted update.
   */
  async getReceipt(roundId: string): Promise<UpdateReceipt | undefined> {
    try {
      const res = await unaryCall(this.client, this.client.getReceipt, { roundId }, new Metadata());
      return res.receipt ? receiptFromProto(res.receipt) : undefined;
    } catch (err) {
      const rpc = RpcError.from(err);
      if (rpc.code === status.NOT_FOUND) return undefined;
      throw rpc;
    }
  }

  /** The federation's HE key bundle as this site may read it (its own wrapped key only). */
  async getKeyBundle(federationId: string): Promise<KeyBundleView> {
    return keyBundleViewFromProto(
      await unaryCall(this.client, this.client.getKeyBundle, { federationId }, new Metadata()),
    );
  }

  /**
   * Publishes HE public parameters and wrapped keys (key custodian or designated key holder only).
   * @returns how many wrapped keys the coordinator stored (already-held wraps are not replaced).
   */
  async publishKeyBundle(bundle: HeKeyBundle): Promise<{ wrappedKeysStored: number }> {
    const res = await unaryCall(
      this.client,
      this.client.publishKeyBundle,
      { bundle: keyBundleToProto(bundle) },
      new Metadata(),
    );
    return { wrappedKeysStored: res.wrappedKeysStored };
  }
}

/** The header's signed part: the facts of the upload and the site's signature over them. */
function signedUpdate(input: UploadInput, digest: Buffer): SignedUpdate {
  const facts: SignedUpdateFacts = {
    roundId: input.roundId,
    modelVersion: input.modelVersion,
    updateDigest: digest.toString('hex'),
    datasetCommitment: input.datasetCommitment,
    metrics: input.metrics,
    sampleCount: input.sampleCount,
  };
  return {
    roundId: input.roundId,
    modelVersion: BigInt(input.modelVersion),
    updateDigest: digest,
    datasetCommitment: Buffer.from(input.datasetCommitment, 'hex'),
    metrics: input.metrics,
    sampleCount: BigInt(input.sampleCount),
    siteSignature: Buffer.from(input.sign(facts)),
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
