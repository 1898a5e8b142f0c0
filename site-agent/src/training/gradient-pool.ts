/**
 * Data-parallel gradients over training workers. A batch is split into contiguous shards, one per
 * worker; each worker computes the gradient of its shard's mean loss; the pool combines them
 * weighted by shard size, always in worker order, so the result is deterministic for a given seed
 * and worker count. With one worker everything runs in the agent's own thread.
 *
 * Batch norm and the contrastive loss see each worker's shard (as in PyTorch DDP without SyncBN):
 * results depend on the worker count, not on scheduling.
 */
import { Worker } from 'node:worker_threads';
import type { ModelSpec } from '@radfed/shared';
import { TrainingWorkerError } from '../errors.js';
import type { BackendId } from './backend.js';
import { ConvComputer, type ImageBlock } from './conv-model.js';

/** What a worker thread is started with (structured-cloned; the buffers are shared). */
export interface WorkerInit {
  spec: ModelSpec;
  seed: number;
  backend: BackendId;
  images: SharedArrayBuffer;
  count: number;
  weights: SharedArrayBuffer;
  gradients: SharedArrayBuffer;
}

export type WorkerRequest =
  | { op: 'step'; indices: number[]; epoch: number }
  | { op: 'evaluate'; indices: number[] }
  | { op: 'embed'; indices: number[] };

export type WorkerReply =
  | { op: 'ready' }
  | { op: 'step'; loss: number; moments: Float32Array }
  | { op: 'evaluate'; loss: number }
  | { op: 'embed'; features: Float32Array }
  | { op: 'error'; message: string };

/** A combined training step. */
export interface PoolStep {
  loss: number;
  /** Gradient of the batch loss, trainable tensors in spec order. */
  gradients: Float32Array;
  /** Batch-norm moments averaged over shards (see `StepResult.moments`). */
  moments: Float32Array;
}

interface Shard {
  run(request: WorkerRequest): Promise<WorkerReply>;
  gradients: Float32Array;
  close(): Promise<void>;
}

/** Images per forward pass when evaluating or embedding (bounded so memory stays flat). */
const EVAL_CHUNK = 64;

export class GradientPool {
  private constructor(
    private readonly shards: Shard[],
    private readonly weights: Float32Array,
    private readonly gradientSize: number,
    private readonly momentsSize: number,
    private readonly batchSize: number,
  ) {}

  /**
   * Starts `workers` training threads (or none, for 1) on `backend`, sharing `images`.
   *
   * @throws TrainingWorkerError when a worker cannot start (e.g. its backend fails its check).
   */
  static async create(
    spec: ModelSpec,
    images: ImageBlock,
    seed: number,
    backend: BackendId,
    workers: number,
  ): Promise<GradientPool> {
    const probe = new ConvComputer(spec, images, seed);
    const total = spec.tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
    if (workers <= 1) {
      const weights = new Float32Array(total);
      const gradients = new Float32Array(probe.gradientSize);
      const shard: Shard = {
        gradients,
        close: async () => {},
        run: async (request) => {
          switch (request.op) {
            case 'step':
              return { op: 'step', ...probe.step(weights, request.indices, request.epoch, gradients) };
            case 'evaluate':
              return { op: 'evaluate', loss: probe.evaluate(weights, request.indices) };
            case 'embed':
              return { op: 'embed', features: probe.embed(weights, request.indices) };
          }
        },
      };
      return new GradientPool([shard], weights, probe.gradientSize, probe.momentsSize, spec.batchSize);
    }
    const imageBuffer = new SharedArrayBuffer(images.count * images.size * images.size * 4);
    new Float32Array(imageBuffer).set(images.data.subarray(0, images.count * images.size * images.size));
    const weightBuffer = new SharedArrayBuffer(total * 4);
    const shards = await Promise.all(
      Array.from({ length: workers }, () => {
        const gradients = new SharedArrayBuffer(probe.gradientSize * 4);
        return startWorker(
          { spec, seed, backend, images: imageBuffer, count: images.count, weights: weightBuffer, gradients },
          new Float32Array(gradients),
        );
      }),
    ).catch(async (thrown: unknown) => {
      throw thrown;
    });
    return new GradientPool(
      shards,
      new Float32Array(weightBuffer),
      probe.gradientSize,
      probe.momentsSize,
      spec.batchSize,
    );
  }

  /** Number of workers (1 when training in the agent's thread). */
  get size(): number {
    return this.shards.length;
  }

  /** One data-parallel training pass over `indices` with weights `weights`. */
  async step(weights: Float32Array, indices: readonly number[], epoch: number): Promise<PoolStep> {
    this.weights.set(weights);
    const parts = split(indices, this.shards.length);
    const replies = await Promise.all(
      parts.map((part, w) =>
        part.length === 0
          ? undefined
          : (this.shards[w] as Shard).run({ op: 'step', indices: part, epoch }).then(expect('step')),
      ),
    );
    const gradients = new Float32Array(this.gradientSize);
    const moments = new Float32Array(this.momentsSize);
    let loss = 0;
    for (const [w, reply] of replies.entries()) {
      if (reply === undefined) continue;
      const share = (parts[w]?.length ?? 0) / indices.length;
      const shard = (this.shards[w] as Shard).gradients;
      for (let k = 0; k < gradients.length; k++)
        gradients[k] = (gradients[k] as number) + share * (shard[k] as number);
      for (let k = 0; k < moments.length; k++)
        moments[k] = (moments[k] as number) + share * (reply.moments[k] as number);
      loss += share * reply.loss;
    }
    return { loss, gradients, moments };
  }

  /** Mean objective on the fixed evaluation views, in chunks of the batch size. */
  async evaluate(weights: Float32Array, indices: readonly number[]): Promise<number> {
    this.weights.set(weights);
    const chunks = chunk(indices, Math.max(2, this.batchSize));
    const losses = await this.spread(chunks, (part) => ({ op: 'evaluate', indices: part }), 'evaluate');
    let total = 0;
    for (const [c, reply] of losses.entries()) total += reply.loss * (chunks[c]?.length ?? 0);
    return total / indices.length;
  }

  /** Pooled features of `indices`, `features` values per image, in order. */
  async embed(weights: Float32Array, indices: readonly number[]): Promise<Float32Array[]> {
    this.weights.set(weights);
    const chunks = chunk(indices, EVAL_CHUNK);
    const replies = await this.spread(chunks, (part) => ({ op: 'embed', indices: part }), 'embed');
    const out: Float32Array[] = [];
    for (const [c, reply] of replies.entries()) {
      const n = chunks[c]?.length ?? 0;
      const width = reply.features.length / Math.max(1, n);
      for (let i = 0; i < n; i++) out.push(reply.features.slice(i * width, (i + 1) * width));
    }
    return out;
  }

  /** Stops the worker threads. */
  async close(): Promise<void> {
    await Promise.all(this.shards.map((shard) => shard.close()));
  }

  /** Runs chunk c on worker c mod size, one request per worker at a time; replies in chunk order. */
  private async spread<Op extends WorkerReply['op']>(
    chunks: number[][],
    request: (part: number[]) => WorkerRequest,
    op: Op,
  ): Promise<Extract<WorkerReply, { op: Op }>[]> {
    const replies: Extract<WorkerReply, { op: Op }>[] = new Array(chunks.length);
    await Promise.all(
      this.shards.map(async (shard, w) => {
        for (let c = w; c < chunks.length; c += this.shards.length) {
          replies[c] = expect(op)(await shard.run(request(chunks[c] ?? [])));
        }
      }),
    );
    return replies;
  }
}

function expect<Op extends WorkerReply['op']>(op: Op) {
  return (reply: WorkerReply): Extract<WorkerReply, { op: Op }> => {
    if (reply.op === 'error') throw new TrainingWorkerError(`a training worker failed: ${reply.message}`);
    if (reply.op !== op) throw new TrainingWorkerError(`a training worker answered ${reply.op} to ${op}`);
    return reply as Extract<WorkerReply, { op: Op }>;
  };
}

/** `indices` in `parts` contiguous shards whose sizes differ by at most one, larger first. */
export function split(indices: readonly number[], parts: number): number[][] {
  const out: number[][] = [];
  const base = Math.floor(indices.length / parts);
  let extra = indices.length % parts;
  let at = 0;
  for (let p = 0; p < parts; p++) {
    const size = base + (extra > 0 ? 1 : 0);
    if (extra > 0) extra--;
    out.push(indices.slice(at, at + size));
    at += size;
  }
  return out;
}

function chunk(indices: readonly number[], size: number): number[][] {
  const out: number[][] = [];
  for (let at = 0; at < indices.length; at += size) out.push(indices.slice(at, at + size));
  // A trailing chunk of one image would give batch norm a single sample: fold it into the previous.
  const last = out.at(-1);
  if (out.length > 1 && last !== undefined && last.length < 2) {
    out.pop();
    out.at(-1)?.push(...last);
  }
  return out;
}

async function startWorker(init: WorkerInit, gradients: Float32Array): Promise<Shard> {
  const worker = new Worker(new URL('./gradient-worker.mjs', import.meta.url), { workerData: init });
  let pending: { resolve: (reply: WorkerReply) => void; reject: (error: Error) => void } | undefined;
  let failure: Error | undefined;
  const fail = (error: Error) => {
    failure ??= error;
    pending?.reject(error);
    pending = undefined;
  };
  const ready = new Promise<void>((resolve, reject) => {
    worker.once('message', (reply: WorkerReply) => {
      if (reply.op === 'ready') resolve();
      else
        reject(
          new TrainingWorkerError(
            `a training worker could not start: ${reply.op === 'error' ? reply.message : reply.op}`,
          ),
        );
      worker.on('message', (next: WorkerReply) => {
        const waiting = pending;
        pending = undefined;
        waiting?.resolve(next);
      });
    });
    worker.once('error', (error) => {
      const wrapped = new TrainingWorkerError(`a training worker crashed: ${error.message}`, {
        cause: error,
      });
      reject(wrapped);
      fail(wrapped);
    });
    worker.once('exit', (code) => fail(new TrainingWorkerError(`a training worker exited (code ${code})`)));
  });
  try {
    await ready;
  } catch (thrown) {
    await worker.terminate();
    throw thrown;
  }
  return {
    gradients,
    run: (request) => {
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise<WorkerReply>((resolve, reject) => {
        pending = { resolve, reject };
        worker.postMessage(request);
      });
    },
    close: async () => {
      failure ??= new TrainingWorkerError('the training worker was stopped');
      await worker.terminate();
    },
  };
}
