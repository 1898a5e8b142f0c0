/**
 * Wrappers that adapt async domain handlers to grpc-js callbacks and route every failure through
 * the status table, so no handler can leak a stack trace or leave a call hanging. A call the client
 * cancelled (or whose connection dropped) is logged as cancelled, not as an internal error: its
 * handler's failure is only the stream closing under it.
 */
import type {
  handleClientStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
  ServerReadableStream,
  ServerUnaryCall,
  ServerWritableStream,
} from '@grpc/grpc-js';
import type { Logger } from '@radfed/shared';
import { cancelledStatus, toServiceError, toStatus } from './status.js';

export type Handlers<S> = S;

export function unary<Req, Res>(
  log: Logger,
  method: string,
  fn: (call: ServerUnaryCall<Req, Res>) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    logCancel(call, log, method);
    fn(call).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(failure(call, err, log, method))),
    );
  };
}

export function serverStreaming<Req, Res>(
  log: Logger,
  method: string,
  fn: (call: ServerWritableStream<Req, Res>) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  return (call) => {
    logCancel(call, log, method);
    fn(call).then(
      () => {
        if (!call.writableEnded && !call.cancelled) call.end();
      },
      (err: unknown) => {
        const s = failure(call, err, log, method);
        if (!call.cancelled) call.emit('error', toServiceError(s));
      },
    );
  };
}

export function clientStreaming<Req, Res>(
  log: Logger,
  method: string,
  fn: (call: ServerReadableStream<Req, Res>) => Promise<Res>,
): handleClientStreamingCall<Req, Res> {
  return (call, callback) => {
    logCancel(call, log, method);
    fn(call).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(failure(call, err, log, method))),
    );
  };
}

/** The status a failed handler ends its call with; a cancelled call's failure is not an error. */
function failure(call: { cancelled: boolean }, err: unknown, log: Logger, method: string) {
  return call.cancelled ? cancelledStatus : toStatus(err, log, method);
}

/** Logs a call the client cancelled (or whose connection dropped), once, whatever its handler does. */
function logCancel(call: { once(event: 'cancelled', fn: () => void): unknown }, log: Logger, method: string) {
  call.once('cancelled', () => log.info('call cancelled by the client', { method }));
}
