import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { ModelSpec } from '@radfed/shared';
import { TrainingInputError } from '../errors.js';
import type { BackendId } from './backend.js';
import { BN_MOMENTUM_DECAY, convLayout, type ImageBlock, isTrainable, offsets } from './conv-model.js';
import { GradientPool } from './gradient-pool.js';
import { heldOutIndices, knnAccuracy } from './knn.js';
import { initialWeights } from './model.js';
import { adamState, adamStep, type TrainableSpan } from './optimizer.js';
import { deriveSeed, shuffledIndices } from './random.js';
import type { TrainerCheckpoint, TrainInput, TrainOutput, TrainProgress } from './trainer.js';

/** Images the before/after loss is measured on (the first ones of the training split). */
const EVAL_IMAGES = 256;

export interface ConvTrainOptions {
  backend: BackendId;
  /** Worker threads; 1 trains in the calling thread. */
  workers: number;
}

/**
 * Trains a `conv4` or ResNet spec for one round: seeded shuffles, Adam (in JavaScript, identical for any
 * worker count) with FedProx on shared tensors, batch-norm moving statistics updated from each
 * step's batch moments, a checkpoint after every epoch, and the before/after objective plus a k-NN
 * probe when labels are given. Gradients come from a {@link GradientPool}.
 */
export async function trainConv(
  input: TrainInput,
  options: ConvTrainOptions,
  onProgress?: (progress: TrainProgress) => void,
): Promise<TrainOutput> {
  const started = performance.now();
  const { spec } = input;
  const seed = input.seed ?? spec.seed;
  const held = input.labels ? heldOutIndices(input.labels, spec.seed) : [];
  const heldSet = new Set(held);
  const train = input.images.flatMap((_, index) => (heldSet.has(index) ? [] : [index]));
  if (train.length < 2) {
    throw new TrainingInputError(
      `objective ${spec.objective} needs at least 2 training images (batch statistics and views), got ${train.length}`,
    );
  }
  const block = toBlock(input.images, spec.inputSize);
  const start = input.globalWeights ?? initialWeights(spec);
  const weights = Float32Array.from(input.resume?.weights ?? start);
  const layout = offsets(spec);
  const spans = trainableSpans(spec, start, layout);
  const optimizer = input.resume
    ? {
        step: input.resume.optimizer.step,
        m: Float32Array.from(input.resume.optimizer.m),
        v: Float32Array.from(input.resume.optimizer.v),
      }
    : adamState(layout.gradSize);
  const firstEpoch = (input.resume?.epoch ?? 0) + 1;

  const pool = await GradientPool.create(spec, block, seed, options.backend, options.workers);
  try {
    const evalSet = train.slice(0, EVAL_IMAGES);
    const initialLoss = await pool.evaluate(start, evalSet);
    const initialKnn = await probe(pool, start, input.labels, train, held);

    const batches = batchCount(train.length, spec.batchSize);
    let seen = 0;
    let stepSeconds = 0;
    for (let epoch = firstEpoch; epoch <= spec.localEpochs; epoch++) {
      const order = shuffledIndices(train.length, deriveSeed(seed, epoch)).map((k) => train[k] as number);
      for (let batch = 1; batch <= batches; batch++) {
        const indices = batchIndices(order, batch, batches, spec.batchSize);
        const stepStarted = performance.now();
        const result = await pool.step(weights, indices, epoch);
        adamStep(weights, result.gradients, spans, optimizer, spec.learningRate, spec.fedproxMu);
        updateMovingStatistics(spec, weights, layout.flat, result.moments);
        stepSeconds += (performance.now() - stepStarted) / 1000;
        seen += indices.length;
        onProgress?.({
          epoch,
          epochs: spec.localEpochs,
          batch,
          batches,
          loss: result.loss,
          imagesPerSecond: seen / stepSeconds,
        });
        await yieldToEventLoop();
      }
      await input.onCheckpoint?.({
        epoch,
        weights: Float32Array.from(weights),
        optimizer: {
          step: optimizer.step,
          m: Float32Array.from(optimizer.m),
          v: Float32Array.from(optimizer.v),
        },
      } satisfies TrainerCheckpoint);
    }

    const loss = await pool.evaluate(weights, evalSet);
    const knn = await probe(pool, weights, input.labels, train, held);
    return {
      weights,
      sampleCount: train.length,
      metrics: {
        loss,
        initialLoss,
        trainSeconds: (performance.now() - started) / 1000,
        ...(seen > 0 ? { imagesPerSecond: seen / stepSeconds } : {}),
        ...(knn !== undefined && initialKnn !== undefined
          ? { knnAccuracy: knn, initialKnnAccuracy: initialKnn, heldOut: held.length }
          : {}),
      },
    };
  } finally {
    await pool.close();
  }
}

/** Steps per epoch: full batches, the remainder folded into the last so no batch has one image. */
function batchCount(images: number, batchSize: number): number {
  const full = Math.floor(images / batchSize);
  const rest = images % batchSize;
  return full === 0 ? 1 : rest >= 2 ? full + 1 : full;
}

function batchIndices(order: number[], batch: number, batches: number, batchSize: number): number[] {
  const begin = (batch - 1) * batchSize;
  return batch === batches ? order.slice(begin) : order.slice(begin, begin + batchSize);
}

function toBlock(images: readonly Float32Array[], size: number): ImageBlock {
  const pixels = size * size;
  const data = new Float32Array(images.length * pixels);
  for (const [index, image] of images.entries()) {
    if (image.length !== pixels) {
      throw new TrainingInputError(
        `image ${index} has ${image.length} values, but the model takes ${size}x${size} = ${pixels}`,
      );
    }
    data.set(image, index * pixels);
  }
  return { data, count: images.length, size };
}

/** Trainable tensors; shared ones carry their starting (global) value as the FedProx anchor. */
function trainableSpans(
  spec: ModelSpec,
  start: Float32Array,
  layout: ReturnType<typeof offsets>,
): TrainableSpan[] {
  return spec.tensors.flatMap((tensor, index) => {
    if (!isTrainable(tensor.name)) return [];
    const weightOffset = layout.flat[index] ?? 0;
    const size = tensor.shape.reduce((a, b) => a * b, 1);
    return [
      {
        weightOffset,
        gradOffset: layout.grad[index] ?? 0,
        size,
        ...(tensor.shared && spec.fedproxMu > 0
          ? { anchor: start.slice(weightOffset, weightOffset + size) }
          : {}),
      },
    ];
  });
}

/** moving = decay * moving + (1 - decay) * batch, for each batch-norm block's mean and variance. */
function updateMovingStatistics(
  spec: ModelSpec,
  weights: Float32Array,
  flat: number[],
  moments: Float32Array,
): void {
  let at = 0;
  for (const norm of convLayout(spec).norms) {
    for (const target of [norm.mean, norm.variance]) {
      const base = flat[target] ?? 0;
      for (let c = 0; c < norm.channels; c++) {
        weights[base + c] =
          BN_MOMENTUM_DECAY * (weights[base + c] as number) +
          (1 - BN_MOMENTUM_DECAY) * (moments[at + c] as number);
      }
      at += norm.channels;
    }
  }
}

/** k-NN accuracy on the held-out images against the labelled training images, if any. */
async function probe(
  pool: GradientPool,
  weights: Float32Array,
  labels: TrainInput['labels'],
  train: number[],
  held: number[],
): Promise<number | undefined> {
  if (labels === undefined || held.length === 0) return undefined;
  const reference = train.filter((index) => labels[index] !== undefined);
  const features = await pool.embed(weights, [...reference, ...held]);
  return knnAccuracy(
    features.slice(0, reference.length),
    reference.map((index) => labels[index] as string),
    features.slice(reference.length),
    held.map((index) => labels[index] as string),
  );
}
