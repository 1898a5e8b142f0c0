/**
 * Client-side helpers shared by the operator CLI and the site agent: TLS channel credentials,
 * promise wrappers for unary calls, and the one error normaliser ({@link RpcError.from}).
 */
import {
  type ChannelCredentials,
  type ClientOptions,
  credentials,
  type Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';

export interface TlsMaterial {
  caCertPem: string;
  /** Client certificate and key; omit for calls made before a site holds one (Enrol). */
  certPem?: string | undefined;
  keyPem?: string | undefined;
}

export function channelCredentials(tls: TlsMaterial): ChannelCredentials {
  return credentials.createSsl(
    Buffer.from(tls.caCertPem),
    tls.keyPem ? Buffer.from(tls.keyPem) : null,
    tls.certPem ? Buffer.from(tls.certPem) : null,
  );
}

/** Channel options every RadFed client uses: bounded messages, keepalive for long task streams. */
export function channelOptions(maxMessageBytes = 4 * 1024 * 1024): ClientOptions {
  return {
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.keepalive_time_ms': 20_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
  };
}

/** A failed RPC, normalised: the status code, its name, and the server's sentence. */
export class RpcError extends Error {
  override name = 'RpcError';
  constructor(
    readonly code: status,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get codeName(): string {
    return status[this.code] ?? 'UNKNOWN';
  }

  /** Whether retrying the same call later may succeed (connection trouble, not a refusal). */
  get retryable(): boolean {
    return (
      this.code === status.UNAVAILABLE ||
      this.code === status.DEADLINE_EXCEEDED ||
      (this.code === status.RESOURCE_EXHAUSTED && /memory/i.test(this.message))
    );
  }

  static from(err: unknown): RpcError {
    if (err instanceof RpcError) return err;
    const e = err as Partial<ServiceError>;
    if (typeof e?.code === 'number') {
      const details = e.details || e.message || 'no details';
      const message =
        e.code === status.UNAVAILABLE
          ? `Cannot reach the coordinator (${details}); check the address and that it is running.`
          : details;
      return new RpcError(e.code, message, { cause: err });
    }
    return new RpcError(status.UNKNOWN, err instanceof Error ? err.message : String(err), { cause: err });
  }
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: { deadline?: Date },
  callback: (err: ServiceError | null, res: Res) => void,
) => unknown;

/** Calls a unary method and resolves with its response or rejects with an {@link RpcError}. */
export function unaryCall<Req, Res>(
  client: object,
  method: UnaryMethod<Req, Res>,
  request: Req,
  metadata: Metadata,
  timeoutMs = 30_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, request, metadata, { deadline: new Date(Date.now() + timeoutMs) }, (err, res) =>
      err ? reject(RpcError.from(err)) : resolve(res),
    );
  });
}
