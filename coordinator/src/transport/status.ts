/**
 * The one table that turns domain errors into gRPC statuses. A caller never sees a stack trace or
 * an internal message: known failures carry their own actionable sentence, anything else becomes
 * INTERNAL with an incident id that matches the coordinator's log line. Only errors the coordinator
 * made itself (RadFedError) pass with their text: a status-shaped object from anywhere else (a
 * library, a gRPC client call) is an internal error like any other.
 */
import { randomBytes } from 'node:crypto';
import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import type { Logger } from '@radfed/shared';
import { type ErrorKind, RadFedError } from '../errors.js';
import { uniqueViolation } from '../store/unique-violation.js';

const CODES: Record<Exclude<ErrorKind, 'internal'>, status> = {
  'invalid-argument': status.INVALID_ARGUMENT,
  'not-found': status.NOT_FOUND,
  'already-exists': status.ALREADY_EXISTS,
  'failed-precondition': status.FAILED_PRECONDITION,
  'permission-denied': status.PERMISSION_DENIED,
  unauthenticated: status.UNAUTHENTICATED,
  'resource-exhausted': status.RESOURCE_EXHAUSTED,
  unavailable: status.UNAVAILABLE,
  'deadline-exceeded': status.DEADLINE_EXCEEDED,
  aborted: status.ABORTED,
};

export interface StatusObject {
  code: status;
  details: string;
}

export function toStatus(err: unknown, log: Logger, method: string): StatusObject {
  if (err instanceof RadFedError && err.kind !== 'internal') {
    return { code: CODES[err.kind], details: err.message };
  }
  const constraint = uniqueViolation(err);
  if (constraint !== undefined) {
    // A write raced another one that no domain code anticipated: safe to retry, not an internal fault.
    log.warn('write lost a race on a unique constraint', { method, constraint });
    return {
      code: status.ABORTED,
      details: 'This request collided with a concurrent change to the same record; retry it.',
    };
  }
  const incident = randomBytes(4).toString('hex');
  log.error('internal error', {
    method,
    incident,
    err: err instanceof Error ? err : String(err),
    stack: (err as Error)?.stack,
  });
  return {
    code: status.INTERNAL,
    details: `The coordinator hit an internal error (incident ${incident}); the operator can find it in the logs.`,
  };
}

/** What a cancelled call ends with (the client has gone, so no one reads it). */
export const cancelledStatus: StatusObject = {
  code: status.CANCELLED,
  details: 'The call was cancelled by the client.',
};

export function toServiceError(s: StatusObject): ServiceError {
  const e = new Error(s.details) as ServiceError;
  e.code = s.code;
  e.details = s.details;
  e.metadata = new Metadata();
  return e;
}
