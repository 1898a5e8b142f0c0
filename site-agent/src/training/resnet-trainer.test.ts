import { builtinModelSpec } from '@radfed/shared';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend.js';
import { ConvComputer } from './conv-model.js';
import { initialWeights } from './model.js';
import { TfjsTrainer } from './tfjs-trainer.js';

const SIZE = 32;
const images = Array.from({ length: 6 }, (_, k) =>
  Float32Array.from({ length: SIZE * SIZE }, (_, i) => Math.sin(i * 0.013 * (k + 1)) + 0.1 * k),
);

beforeAll(async () => {
  await selectBackend();
});

describe('resnet18 training on WASM', () => {
  it('starts from the same seeded weights every time (torchvision-style Kaiming init)', () => {
    const spec = builtinModelSpec('resnet18', { inputSize: SIZE });
    const a = initialWeights(spec);
    const b = initialWeights(spec);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(initialWeights({ ...spec, seed: 7 }).buffer).equals(Buffer.from(a.buffer))).toBe(
      false,
    );
    // conv1: U(-b, b) with b = sqrt(3) * sqrt(2 / (7 * 7 * 64)).
    const bound = Math.sqrt(3) * Math.sqrt(2 / (7 * 7 * 64));
    const stem = a.subarray(0, 7 * 7 * 64);
    expect(Math.max(...stem.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...stem.map(Math.abs))).toBeGreaterThan(0.9 * bound);
  });

  it.each(['simclr', 'masked-reconstruction'])(
    'trains one epoch with %s and moves the local batch-norm statistics',
    async (objective) => {
      const spec = builtinModelSpec('resnet18', { objective, inputSize: SIZE, batchSize: 6 });
      const start = initialWeights(spec);
      const out = await new TfjsTrainer({ workers: 1 }).train({ spec, images });
      expect(out.sampleCount).toBe(6);
      expect(Number.isFinite(out.metrics.loss)).toBe(true);
      expect(out.metrics.loss).not.toBe(out.metrics.initialLoss);
      const at = spec.tensors.findIndex((t) => t.name === 'encoder/layer4.1/bn2/moving_mean');
      const offset = spec.tensors.slice(0, at).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
      expect(out.weights[offset]).not.toBe(start[offset]);
    },
    600_000,
  );

  it('embeds to 512 pooled features per image', () => {
    const spec = builtinModelSpec('resnet18', { inputSize: SIZE });
    const data = new Float32Array(images.length * SIZE * SIZE);
    for (const [k, image] of images.entries()) data.set(image, k * SIZE * SIZE);
    const computer = new ConvComputer(spec, { data, count: images.length, size: SIZE }, spec.seed);
    const features = computer.embed(initialWeights(spec), [0, 1]);
    expect(features.length).toBe(2 * 512);
    expect(features.every(Number.isFinite)).toBe(true);
  });
});
