/**
 * The repository's command-line programs, for suites that run them as a user does (with
 * `runToEnd` or their own spawn): each is a script run with the current Node.
 */
import { join } from 'node:path';

export { AGENT_BIN, COORDINATOR_BIN } from '@radfed/coordinator/testing';

/** `radfed`, the operator CLI. */
export const RADFED_BIN = join(import.meta.dirname, '../../coordinator/bin/radfed.mjs');
