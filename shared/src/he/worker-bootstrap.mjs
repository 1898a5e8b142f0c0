// Starts an HE worker thread. Worker threads do not inherit a loader the main thread registered,
// so make TypeScript loadable here first (tsx, as the binaries use), then load the worker module.
import { workerData } from 'node:worker_threads';

try {
  const { register } = await import('tsx/esm/api');
  register();
} catch {
  // No tsx: a runtime that strips types itself, or compiled sources.
}
await import(workerData.module);
