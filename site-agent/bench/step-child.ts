/**
 * A `pnpm bench:train` measurement in a process of its own, for backends that cannot share the
 * bench's process (tfjs has one backend per thread, and TensorFlow reads its thread counts,
 * `TF_NUM_INTRAOP_THREADS`, once at load). Prints one line: `row <json>`.
 */
import { parseArgs } from 'node:util';
import { type BackendId, selectBackend } from '../src/training/backend.js';
import { measure } from './measure.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'native' },
    objective: { type: 'string', default: 'simclr' },
    workers: { type: 'string', default: '1' },
    batch: { type: 'string', default: '32' },
    steps: { type: 'string', default: '6' },
  },
});
const backend = values.backend as BackendId;
await selectBackend({ only: backend });
const row = await measure(
  backend,
  values.objective,
  Number(values.workers),
  Number(values.batch),
  Number(values.steps),
);
process.stdout.write(`row ${JSON.stringify(row)}\n`);
process.exit(0);
