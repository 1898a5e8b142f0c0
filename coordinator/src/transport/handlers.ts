/**
 * Wrappers that adapt async domain handlers to grpc-js callbacks and route every failure through
 * the status table, so no handler can leak a stack trace or leave a call hanging.
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
import { toServiceError, toStatus } from './status.js';

export type Handlers<S> = S;

export function unary<Req, Res>(
  log: Logger,
  method: string,
  fn: (call: ServerUnaryCall<Req, Res>) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(toStatus(err, log, method))),
    );
  };
}

export function serverStreaming<Req, Res>(
  log: Logger,
  method: string,
  fn: (call: ServerWritableStream<Req, Res>) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  return (call) => {
    fn(call).then(
      () => {
        if (!call.writableEnded && !call.cancelled) call.end();
      },
      (err: unknown) => {
        if (call.cancelled) return;
        call.emit('error', toServiceError(toStatus(err, log, method)));
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
    fn(call).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(toStatus(err, log, method))),
    );
  };
}
