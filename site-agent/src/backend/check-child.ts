/**
 * Child process: selects exactly one backend (argv[2]; `auto`: the agent's own order) with `RADFED_BACKENDS_DIR` as the parent
 * set it, runs its known-answer check, times a second (warm) run, and prints one result line. A
 * binding that crashes the process takes only this child with it.
 */

import type { BackendId } from '../training/backend.js';
import { selectBackend } from '../training/backend.js';
import { knownAnswerProblems } from '../training/known-answer.js';
import { RESULT_PREFIX } from './check.js';

const id = process.argv[2] as BackendId | 'auto';
try {
  const backend = await selectBackend(id === 'auto' ? {} : { only: id });
  const started = performance.now();
  const problems = knownAnswerProblems();
  const warmMs = performance.now() - started;
  process.stdout.write(
    `${RESULT_PREFIX}${JSON.stringify({ passed: problems.length === 0, id: backend.id, skipped: backend.skipped, detail: backend.detail, firstMs: backend.knownAnswerMs, warmMs, reason: problems.join('; ') })}\n`,
  );
} catch (thrown) {
  const message = thrown instanceof Error ? thrown.message : String(thrown);
  process.stdout.write(
    `${RESULT_PREFIX}${JSON.stringify({ passed: false, id, reason: message.replace(/^no usable tfjs backend: [^:]+: /, '') })}\n`,
  );
}
process.exit(0);
