import { createHash } from 'node:crypto';
import { Metadata, status } from '@grpc/grpc-js';
import {
  channelCredentials,
  channelOptions,
  type EnrolRequest,
  type EnrolResponse,
  type ModelHeader,
  type Receipt,
  RpcError,
  SiteServiceClient,
  type TlsMaterial,
  type TrainTask,
  unaryCall,
} from '@radfed/proto';
import { ModelTransferError } from '../errors.js';

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
}

export interface DownloadedModel {
  header: ModelHeader;
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
    onTask: (task: TrainTask) => void,
    onHeartbeat: () => void = () => {},
  ): { done: Promise<RpcError | undefined>; cancel(): void } {
    const call = this.client.watchTasks(req);
    const done = new Promise<RpcError | undefined>((resolve) => {
      call.on('data', (msg: { event?: { $case: string; value: unknown } }) => {
        if (msg.event?.$case === 'train') onTask(msg.event.value as TrainTask);
        else onHeartbeat();
      });
      call.on('end', () => resolve(undefined));
      call.on('error', (err: Error & { code?: number }) =>
        resolve(err.code === status.CANCELLED ? undefined : RpcError.from(err)),
      );
    });
    return { done, cancel: () => call.cancel() };
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
    return { header, data };
  }

  /** Uploads an update, resuming from what the coordinator holds after a broken stream. */
  async upload(input: UploadInput): Promise<Receipt> {
    const digest = createHash('sha256').update(input.data).digest();
    let offset = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.uploadFrom(input, digest, offset);
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

  private uploadFrom(input: UploadInput, digest: Buffer, offset: number): Promise<Receipt> {
    return new Promise((resolve, reject) => {
      const call = this.client.uploadUpdate((err, res) =>
        err ? reject(RpcError.from(err)) : resolve(res!.receipt!),
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
            signed: undefined,
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
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
