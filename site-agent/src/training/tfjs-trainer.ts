import { availableParallelism } from 'node:os';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { checkModelSpec, type ModelSpec } from '@radfed/shared';
import * as tf from '@tensorflow/tfjs';
import { TrainingInputError } from '../errors.js';
import { selectBackend } from './backend.js';
import { trainConv } from './conv-trainer.js';
import {
  buildDenseAutoencoder,
  getFlatWeights,
  initialWeights,
  setFlatWeights,
  unflattenWeights,
} from './model.js';
import { deriveSeed, shuffledIndices } from './random.js';
import type { Trainer, TrainInput, TrainOutput, TrainProgress } from './trainer.js';

/**
 * Standard deviation of the Gaussian noise added to inputs for the denoising objective. Images are
 * standardised to unit variance, so this is a signal-to-noise ratio of 4.
 */
export const DENOISING_NOISE_STD = 0.25;

/** Images per forward pass when measuring the loss over the whole local set. */
const EVAL_BATCH = 256;

/** Distinguishes the evaluation noise draw from training draws (any fixed value works). */
const EVAL_STREAM = 0xe7a1;

/**
 * Trains the built-in architectures with TensorFlow.js on the selected backend (`selectBackend`).
 * `conv4` is trained by `trainConv` (data-parallel worker threads on WASM); `dense-ae-32` here:
 *
 * Each optimiser step feeds image + N(0, {@link DENOISING_NOISE_STD}^2) noise and regresses the clean
 * image (MSE), with Adam at `spec.learningRate`, `spec.batchSize` images per step (the last step of
 * an epoch may be smaller), `spec.localEpochs` passes in a seeded order. With `spec.fedproxMu > 0`
 * the FedProx term mu/2 * ||w - w_global||^2 is added over the shared tensors only: local tensors
 * (FedBN) are not aggregated, so there is no global value to stay close to.
 *
 * The same input gives the same output on the same backend. Every tensor is disposed before
 * `train` settles, and the event loop is yielded between steps.
 */
export class TfjsTrainer implements Trainer {
  private readonly workers: number | undefined;

  /**
   * @param options.workers training threads for conv architectures on WASM (one per core by
   *   default; the agent passes its `RADFED_TRAIN_WORKERS` setting); native backends use their own threads and get one.
   */
  constructor(options: { workers?: number } = {}) {
    this.workers = options.workers;
  }

  async train(input: TrainInput, onProgress?: (progress: TrainProgress) => void): Promise<TrainOutput> {
    const started = performance.now();
    const { spec, images } = input;
    validate(input);
    if (spec.architecture !== 'dense-ae-32') {
      const backend = await selectBackend();
      const workers = backend.id === 'wasm' ? (this.workers ?? defaultWorkers()) : 1;
      return trainConv(input, { backend: backend.id, workers }, onProgress);
    }
    const seed = input.seed ?? spec.seed;
    const start = input.globalWeights ?? initialWeights(spec);
    const pixels = spec.inputSize * spec.inputSize;

    const model = buildDenseAutoencoder(spec);
    const optimizer = tf.train.adam(spec.learningRate);
    const data = tf.tensor2d(concat(images, pixels), [images.length, pixels]);
    const anchors = proximalAnchors(spec, start);
    try {
      setFlatWeights(model, start, spec);
      const variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
      const initialLoss = evaluate(model, data, seed);

      const batches = Math.ceil(images.length / spec.batchSize);
      let seen = 0;
      for (let epoch = 1; epoch <= spec.localEpochs; epoch++) {
        const order = shuffledIndices(images.length, deriveSeed(seed, epoch));
        for (let batch = 1; batch <= batches; batch++) {
          const indices = order.slice((batch - 1) * spec.batchSize, batch * spec.batchSize);
          const cost = optimizer.minimize(
            () => {
              const clean = tf.gather(data, tf.tensor1d(indices, 'int32'));
              const noisy = clean.add(
                tf.randomNormal(
                  clean.shape,
                  0,
                  DENOISING_NOISE_STD,
                  'float32',
                  deriveSeed(seed, epoch, batch),
                ),
              );
              const mse = tf.losses.meanSquaredError(clean, model.apply(noisy) as tf.Tensor2D);
              return anchors.length === 0
                ? (mse as tf.Scalar)
                : mse.add(proximalTerm(spec.fedproxMu, variables, anchors));
            },
            true,
            variables,
          );
          const loss = (await cost?.data())?.[0] ?? Number.NaN;
          cost?.dispose();
          seen += indices.length;
          onProgress?.({
            epoch,
            epochs: spec.localEpochs,
            batch,
            batches,
            loss,
            imagesPerSecond: seen / ((performance.now() - started) / 1000),
          });
          await yieldToEventLoop();
        }
      }

      return {
        weights: getFlatWeights(model, spec),
        sampleCount: images.length,
        metrics: {
          loss: evaluate(model, data, seed),
          initialLoss,
          trainSeconds: (performance.now() - started) / 1000,
        },
      };
    } finally {
      model.dispose();
      optimizer.dispose();
      data.dispose();
      tf.dispose(anchors.map((anchor) => anchor.value));
    }
  }
}

/** One training worker per core; the agent's `RADFED_TRAIN_WORKERS` setting overrides it. */
export function defaultWorkers(): number {
  return availableParallelism();
}

function validate({ spec, images, globalWeights }: TrainInput): void {
  const problem = checkModelSpec(spec);
  if (problem !== undefined) throw new TrainingInputError(problem);
  if (images.length === 0) throw new TrainingInputError('there are no images to train on');
  const pixels = spec.inputSize * spec.inputSize;
  const wrong = images.findIndex((image) => image.length !== pixels);
  if (wrong !== -1) {
    throw new TrainingInputError(
      `image ${wrong} has ${images[wrong]?.length} values, but the model takes ${spec.inputSize}x${spec.inputSize} = ${pixels}`,
    );
  }
  if (globalWeights !== undefined) unflattenWeights(globalWeights, spec);
}

function concat(images: readonly Float32Array[], pixels: number): Float32Array {
  const out = new Float32Array(images.length * pixels);
  for (const [index, image] of images.entries()) out.set(image, index * pixels);
  return out;
}

/** The shared tensors' starting values, by position in the spec; none when FedProx is off. */
function proximalAnchors(spec: ModelSpec, start: Float32Array): { index: number; value: tf.Tensor }[] {
  if (spec.fedproxMu === 0) return [];
  const parts = unflattenWeights(start, spec);
  return spec.tensors.flatMap((tensor, index) =>
    tensor.shared ? [{ index, value: tf.tensor(parts[index] ?? [], tensor.shape, 'float32') }] : [],
  );
}

function proximalTerm(
  mu: number,
  variables: tf.Variable[],
  anchors: { index: number; value: tf.Tensor }[],
): tf.Scalar {
  const squares = anchors.map(({ index, value }) => {
    const variable = variables[index];
    if (variable === undefined)
      throw new TrainingInputError(`model has no weight ${index} for the FedProx term`);
    return tf.sum(tf.squaredDifference(variable, value));
  });
  return tf.addN(squares).mul(mu / 2) as tf.Scalar;
}

/** Mean denoising MSE over all images, with one fixed noise draw so before/after are comparable. */
function evaluate(model: tf.LayersModel, data: tf.Tensor2D, seed: number): number {
  const [count, pixels] = data.shape;
  let total = 0;
  for (let begin = 0; begin < count; begin += EVAL_BATCH) {
    const size = Math.min(EVAL_BATCH, count - begin);
    total +=
      tf.tidy(() => {
        const clean = data.slice([begin, 0], [size, pixels]);
        const noise = tf.randomNormal(
          [size, pixels],
          0,
          DENOISING_NOISE_STD,
          'float32',
          deriveSeed(seed, EVAL_STREAM, begin),
        );
        const reconstruction = model.predict(clean.add(noise)) as tf.Tensor2D;
        return tf.losses.meanSquaredError(clean, reconstruction).dataSync()[0] ?? Number.NaN;
      }) * size;
  }
  return total / count;
}
