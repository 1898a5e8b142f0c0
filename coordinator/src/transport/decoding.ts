/**
 * Requests whose protobuf bytes do not decode. grpc-js answers a throwing deserializer with
 * `INTERNAL: Error deserializing request`, which blames the server for the client's bytes. Instead
 * the RadFed services decode through {@link guardDecoding}, which turns a decode failure into a
 * {@link MalformedRequest} value, and {@link malformedRequestInterceptor} answers that value with
 * INVALID_ARGUMENT and a sentence before any handler sees it.
 */
import {
  ServerInterceptingCall,
  type ServerInterceptor,
  ServerListenerBuilder,
  type ServiceDefinition,
  status,
} from '@grpc/grpc-js';

/** Stands in for a request message whose bytes did not decode. */
export class MalformedRequest {
  constructor(
    /** The method's path, `/radfed.v1.SiteService/UploadUpdate`. */
    readonly path: string,
    /** What the decoder said, e.g. "invalid wire type 7 at offset 3". */
    readonly reason: string,
  ) {}

  /** The sentence the caller gets. */
  get details(): string {
    const method = this.path.replace(/^\//, '').replace('/', '.');
    return (
      `The request is not a valid ${method} message: its protobuf bytes do not decode (${this.reason}). ` +
      "Check that the client is built from this coordinator's radfed.v1 protocol."
    );
  }
}

/** The same service definition, with every request decoder returning a MalformedRequest instead of throwing. */
export function guardDecoding<S extends ServiceDefinition>(service: S): S {
  const guarded: Record<string, S[keyof S]> = {};
  for (const [name, method] of Object.entries(service) as [string, S[keyof S]][]) {
    const decode = method.requestDeserialize;
    guarded[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch (err) {
          return new MalformedRequest(method.path, err instanceof Error ? err.message : String(err));
        }
      },
    };
  }
  return guarded as unknown as S;
}

/** Ends a call with INVALID_ARGUMENT when a request message did not decode (see {@link guardDecoding}). */
export const malformedRequestInterceptor: ServerInterceptor = (_method, call) =>
  new ServerInterceptingCall(call, {
    start: (next) =>
      next(
        new ServerListenerBuilder()
          .withOnReceiveMessage((message, pass) => {
            if (message instanceof MalformedRequest) {
              call.sendStatus({ code: status.INVALID_ARGUMENT, details: message.details });
              return;
            }
            pass(message);
          })
          .build(),
      ),
  });
