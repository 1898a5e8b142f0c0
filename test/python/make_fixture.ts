/**
 * Writes what test/python/check_export.py compares: for each architecture, an export's
 * `model.safetensors` (the same writer and name mapping `radfed-agent model export` uses) of
 * seeded weights with non-trivial batch-norm statistics, fixed inputs, and RadFed's own features
 * for them. Usage: tsx test/python/make_fixture.ts OUT_DIR
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtinModelSpec } from '@radfed/shared';
import {
  encoderFeatures,
  encodeSafetensors,
  initialWeights,
  selectBackend,
  torchStateDict,
} from '@radfed/site-agent';

const out = process.argv[2];
if (!out) throw new Error('usage: make_fixture.ts OUT_DIR');
mkdirSync(out, { recursive: true });
await selectBackend();

const SIZE = 64;
const COUNT = 3;
const images = Array.from({ length: COUNT }, (_, k) =>
  Float32Array.from({ length: SIZE * SIZE }, (_, i) => {
    const [y, x] = [Math.floor(i / SIZE), i % SIZE];
    return Math.sin(0.21 * x * (k + 1)) * Math.cos(0.13 * y) + 0.3 * k - 0.002 * x * y;
  }),
);
const models: { architecture: string; file: string; inputs: string; features: string; width: number }[] = [];
const inputs = new Float32Array(COUNT * SIZE * SIZE);
for (const [k, image] of images.entries()) inputs.set(image, k * SIZE * SIZE);
writeFileSync(join(out, 'inputs.bin'), inputs);

for (const architecture of ['conv4', 'resnet18']) {
  const spec = builtinModelSpec(architecture, { inputSize: SIZE });
  const weights = initialWeights(spec);
  // Batch-norm tensors as a trained site would hold them, so running statistics matter.
  let at = 0;
  for (const tensor of spec.tensors) {
    const size = tensor.shape.reduce((a, b) => a * b, 1);
    const part = /\/(gamma|beta|moving_mean|moving_variance)$/.exec(tensor.name)?.[1];
    for (let i = 0; part !== undefined && i < size; i++) {
      const s = Math.sin(at + 1.7 * i);
      weights[at + i] =
        part === 'gamma'
          ? 1 + 0.2 * s
          : part === 'beta'
            ? 0.1 * s
            : part === 'moving_mean'
              ? 0.05 * s
              : 0.5 + Math.abs(s);
    }
    at += size;
  }
  const features = encoderFeatures(spec, weights, images);
  const file = `${architecture}.safetensors`;
  writeFileSync(join(out, file), encodeSafetensors(torchStateDict(spec, weights), { format: 'pt' }));
  writeFileSync(join(out, `${architecture}-features.bin`), features);
  models.push({
    architecture,
    file,
    inputs: 'inputs.bin',
    features: `${architecture}-features.bin`,
    width: features.length / COUNT,
  });
}
writeFileSync(join(out, 'meta.json'), JSON.stringify({ size: SIZE, count: COUNT, models }, null, 2));
