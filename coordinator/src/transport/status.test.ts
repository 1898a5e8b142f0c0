import { status } from '@grpc/grpc-js';
import { createLogger } from '@radfed/shared';
import { describe, expect, it } from 'vitest';
import {
  BlobNotFoundError,
  ConcurrentChangeError,
  DigestMismatchError,
  FederationNotFoundError,
  IllegalTransitionError,
  TokenUsedError,
  UploadStalledError,
  WrongRoleError,
} from '../errors.js';
import { toStatus } from './status.js';

describe('error to gRPC status table', () => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l) });

  it('maps each domain failure to its status with its own sentence', () => {
    expect(toStatus(new FederationNotFoundError('x'), log, 'm')).toEqual({
      code: status.NOT_FOUND,
      details: expect.stringMatching(/radfed federations list/),
    });
    expect(toStatus(new TokenUsedError(), log, 'm').code).toBe(status.PERMISSION_DENIED);
    expect(toStatus(new WrongRoleError('site', ['operator']), log, 'm').code).toBe(status.PERMISSION_DENIED);
    expect(toStatus(new DigestMismatchError(), log, 'm').code).toBe(status.INVALID_ARGUMENT);
  });

  it('hides internal errors behind an incident id that is logged with the stack', () => {
    const s = toStatus(new TypeError('secret internals at line 7'), log, 'CreateFederation');
    expect(s.code).toBe(status.INTERNAL);
    expect(s.details).not.toMatch(/secret internals/);
    const incident = /incident ([0-9a-f]+)/.exec(s.details)?.[1];
    expect(incident).toBeDefined();
    const logged = JSON.parse(lines.at(-1)!);
    expect(logged).toMatchObject({ level: 'error', incident, method: 'CreateFederation' });
    expect(logged.stack).toMatch(/TypeError: secret internals/);
  });

  it("treats kind 'internal' (store faults, illegal transitions) as internal errors", () => {
    for (const err of [new BlobNotFoundError('rounds/r1/sum-1'), new IllegalTransitionError('round 1 ...')]) {
      const s = toStatus(err, log, 'SubmitUpdate');
      expect(s.code).toBe(status.INTERNAL);
      expect(s.details).not.toMatch(/rounds\/r1|round 1/);
      expect(JSON.parse(lines.at(-1)!)).toMatchObject({ level: 'error', method: 'SubmitUpdate' });
    }
  });

  it('passes no status-shaped object it did not make itself', () => {
    const foreign = Object.assign(new Error('14 UNAVAILABLE: upstream at 10.0.0.7:5432 refused'), {
      code: status.UNAVAILABLE,
      details: 'upstream at 10.0.0.7:5432 refused',
    });
    const s = toStatus(foreign, log, 'ListRounds');
    expect(s.code).toBe(status.INTERNAL);
    expect(s.details).not.toMatch(/10\.0\.0\.7/);
    expect(s.details).toMatch(/incident [0-9a-f]+/);
  });

  it('maps a stalled upload and a concurrent change to DEADLINE_EXCEEDED and ABORTED', () => {
    expect(toStatus(new UploadStalledError(60, 65536), log, 'm')).toEqual({
      code: status.DEADLINE_EXCEEDED,
      details: expect.stringMatching(/65536 bytes are kept.*GetUploadStatus/),
    });
    expect(toStatus(new ConcurrentChangeError('retry'), log, 'm').code).toBe(status.ABORTED);
  });
});
