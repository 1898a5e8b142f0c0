/**
 * A training worker thread: its own tfjs instance on the backend the agent selected (WASM runs
 * single-threaded, so the agent starts one worker per core), computing gradients, losses and
 * embeddings for the batches the {@link GradientPool} hands it. Images, weights and gradients live
 * in shared memory; messages carry only indices and small results.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { selectBackend } from './backend.js';
import { ConvComputer } from './conv-model.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './gradient-pool.js';

const init = workerData as WorkerInit;
const port = parentPort;
if (port === null) throw new Error('gradient-worker must run in a worker thread');

const ready = (async () => {
  await selectBackend({ only: init.backend });
  const images = { data: new Float32Array(init.images), count: init.count, size: init.spec.inputSize };
  return {
    computer: new ConvComputer(init.spec, images, init.seed),
    weights: new Float32Array(init.weights),
    gradients: new Float32Array(init.gradients),
  };
})();

ready.then(
  () => port.postMessage({ op: 'ready' } satisfies WorkerReply),
  (thrown: unknown) =>
    port.postMessage({
      op: 'error',
      message: thrown instanceof Error ? thrown.message : String(thrown),
    } satisfies WorkerReply),
);

port.on('message', (request: WorkerRequest) => {
  ready
    .then(({ computer, weights, gradients }): WorkerReply => {
      switch (request.op) {
        case 'step': {
          const result = computer.step(weights, request.indices, request.epoch, gradients);
          return { op: 'step', loss: result.loss, moments: result.moments };
        }
        case 'evaluate':
          return { op: 'evaluate', loss: computer.evaluate(weights, request.indices) };
        case 'embed':
          return { op: 'embed', features: computer.embed(weights, request.indices) };
      }
    })
    .then(
      (reply) => port.postMessage(reply),
      (thrown: unknown) =>
        port.postMessage({ op: 'error', message: thrown instanceof Error ? thrown.message : String(thrown) }),
    );
});
