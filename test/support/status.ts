/** The one check the integration suites make of a refused gRPC call. */
import { status } from '@grpc/grpc-js';
import { RpcError } from '@radfed/proto';
import { expect } from 'vitest';

/**
 * Expects `call` to fail with gRPC status `code` and a message matching `text`, as a person would
 * read it: the status, an actionable sentence, and never a stack trace. Resolves with the error.
 */
export async function expectStatus(call: Promise<unknown>, code: status, text: RegExp): Promise<RpcError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => RpcError.from(e),
  );
  expect(err, 'call should fail').toBeDefined();
  expect(err!.codeName, err!.message).toBe(status[code]);
  expect(err!.message).toMatch(text);
  expect(err!.message).not.toMatch(/\n\s+at /); // never a stack trace
  return err!;
}
