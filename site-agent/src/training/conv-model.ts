/**
 * The `conv4` and ResNet encoders and their self-supervised objectives as plain tfjs ops over a flat weight
 * vector: one forward/backward pass per call, gradients and batch-norm moments out. The same code
 * runs in the agent's process and in each training worker.
 */
import {
  type AugmentationSpec,
  DEFAULT_AUGMENTATION,
  DEFAULT_OBJECTIVE_OPTIONS,
  type ModelSpec,
} from '@radfed/shared';
import * as tf from '@tensorflow/tfjs';
import { nativeBatchNormReluTraining } from '../backend/native-fused.js';
import { TrainingInputError } from '../errors.js';
import { augmentView, patchMask, Rng } from './augment.js';
import { deriveSeed } from './random.js';
import {
  isResnet,
  type NormLayer,
  RESNET_BN_EPSILON,
  type ResnetLayout,
  resnetEncode,
  resnetLayout,
} from './resnet-model.js';
import { columnSums } from './wasm-kernels.js';

/** Batch-norm epsilon (added to the variance). */
export const BN_EPSILON = 1e-3;

/** Batch-norm moving statistics keep this fraction of their value at each step (Keras: 0.99). */
export const BN_MOMENTUM_DECAY = 0.9;

/** Distinguishes the fixed evaluation views from training draws (any fixed value works). */
export const EVAL_STREAM = 0xe7a1;

interface Block extends NormLayer {
  kernel: number;
}

/** Where each of the model's tensors sits in `spec.tensors`. */
export interface ConvLayout {
  /** `conv4`'s conv blocks (empty for a ResNet). */
  blocks: Block[];
  /** A ResNet's stem and residual blocks. */
  resnet?: ResnetLayout;
  /** Every batch norm in forward order: the order of {@link StepResult.moments}. */
  norms: NormLayer[];
  /** Batch-norm epsilon of the architecture. */
  epsilon: number;
  head?: { kernel1: number; bias1: number; kernel2: number; bias2: number };
  decoder?: { kernel: number; bias: number };
  /** Width of the pooled representation (the last block's channels). */
  features: number;
}

/** Resolves the tensor positions of a `conv4` or ResNet spec. Assumes `checkModelSpec(spec)` passed. */
export function convLayout(spec: ModelSpec): ConvLayout {
  const at = (name: string) => {
    const index = spec.tensors.findIndex((tensor) => tensor.name === name);
    if (index === -1) throw new TrainingInputError(`model spec has no tensor ${name}`);
    return index;
  };
  const heads = headLayout(spec, at);
  if (isResnet(spec.architecture)) {
    const resnet = resnetLayout(spec);
    return {
      blocks: [],
      resnet,
      norms: resnet.norms,
      epsilon: RESNET_BN_EPSILON,
      features: resnet.features,
      ...heads,
    };
  }
  const blocks: Block[] = [];
  for (let block = 1; spec.tensors.some((t) => t.name === `encoder/conv${block}/kernel`); block++) {
    const kernel = at(`encoder/conv${block}/kernel`);
    blocks.push({
      kernel,
      gamma: at(`encoder/bn${block}/gamma`),
      beta: at(`encoder/bn${block}/beta`),
      mean: at(`encoder/bn${block}/moving_mean`),
      variance: at(`encoder/bn${block}/moving_variance`),
      channels: spec.tensors[kernel]?.shape[3] ?? 0,
    });
  }
  const features = blocks.at(-1)?.channels ?? 0;
  return { blocks, norms: blocks, epsilon: BN_EPSILON, features, ...heads };
}

function headLayout(spec: ModelSpec, at: (name: string) => number): Pick<ConvLayout, 'head' | 'decoder'> {
  if (spec.objective === 'masked-reconstruction') {
    return { decoder: { kernel: at('decoder/kernel'), bias: at('decoder/bias') } };
  }
  return {
    head: {
      kernel1: at('head/dense1/kernel'),
      bias1: at('head/dense1/bias'),
      kernel2: at('head/dense2/kernel'),
      bias2: at('head/dense2/bias'),
    },
  };
}

/** True for tensors the optimiser updates (batch-norm moving statistics are not). */
export function isTrainable(name: string): boolean {
  return !name.includes('/moving_');
}

const elementCount = (shape: readonly number[]) => shape.reduce((product, dim) => product * dim, 1);

/** Offsets of every tensor in the flat vector, and of the trainable ones in the gradient vector. */
export function offsets(spec: ModelSpec): { flat: number[]; grad: (number | undefined)[]; gradSize: number } {
  const flat: number[] = [];
  const grad: (number | undefined)[] = [];
  let at = 0;
  let gradAt = 0;
  for (const tensor of spec.tensors) {
    flat.push(at);
    const size = elementCount(tensor.shape);
    at += size;
    if (isTrainable(tensor.name)) {
      grad.push(gradAt);
      gradAt += size;
    } else {
      grad.push(undefined);
    }
  }
  return { flat, grad, gradSize: gradAt };
}

/** The site's images as one row-major block, `pixels` values each (may live in shared memory). */
export interface ImageBlock {
  data: Float32Array;
  count: number;
  size: number;
}

/** What one forward/backward pass over a batch produced. */
export interface StepResult {
  /** Objective on this batch. */
  loss: number;
  /** Per batch-norm block: the batch mean then the batch variance of its channels, concatenated. */
  moments: Float32Array;
}

/** Multiplies the number of images by this to get the forward passes an objective runs. */
export function viewsPerImage(objective: string): number {
  return objective === 'simclr' ? 2 : 1;
}

/**
 * Computes losses, gradients and embeddings of a `conv4` model on the current tfjs backend. Views
 * (augmentations, masks) are drawn in JavaScript from `(seed, epoch, image index, view)`, so they
 * are the same whichever worker computes them.
 */
export class ConvComputer {
  private readonly layout: ConvLayout;
  private readonly offsets: ReturnType<typeof offsets>;
  private readonly augmentation: AugmentationSpec;
  private readonly trainable: number[];

  constructor(
    private readonly spec: ModelSpec,
    private readonly images: ImageBlock,
    private readonly seed: number,
  ) {
    this.layout = convLayout(spec);
    this.offsets = offsets(spec);
    this.augmentation = spec.augmentation ?? DEFAULT_AUGMENTATION;
    this.trainable = spec.tensors.flatMap((tensor, index) => (isTrainable(tensor.name) ? [index] : []));
  }

  /** Length of the gradient vector (trainable tensors, in spec order). */
  get gradientSize(): number {
    return this.offsets.gradSize;
  }

  /** Length of {@link StepResult.moments}. */
  get momentsSize(): number {
    return this.layout.norms.reduce((sum, norm) => sum + 2 * norm.channels, 0);
  }

  /**
   * One training pass over the images at `indices` (views drawn for `epoch`): writes the gradient
   * of the batch-mean objective into `gradients` and returns the loss and batch-norm moments.
   */
  step(
    weights: Float32Array,
    indices: readonly number[],
    epoch: number,
    gradients: Float32Array,
  ): StepResult {
    const moments: Float32Array[] = [];
    const params = this.tensors(weights);
    try {
      const batch = this.batch(indices, epoch);
      const trainable = this.trainable.map((index) => params[index] as tf.Tensor);
      const { value, grads } = tf.tidy(() => {
        const lossOf = (...variables: tf.Tensor[]) => {
          const current = [...params];
          for (const [k, index] of this.trainable.entries()) current[index] = variables[k] as tf.Tensor;
          return this.objective(current, batch, true, moments);
        };
        const result = tf.valueAndGrads(lossOf)(trainable);
        return { value: result.value, grads: result.grads };
      });
      try {
        for (const [k, index] of this.trainable.entries()) {
          const at = this.offsets.grad[index] ?? 0;
          gradients.set(grads[k]?.dataSync() as Float32Array, at);
        }
        return { loss: value.dataSync()[0] ?? Number.NaN, moments: concatenate(moments) };
      } finally {
        tf.dispose([value, ...grads]);
        tf.dispose(Object.values(batch));
      }
    } finally {
      tf.dispose(params);
    }
  }

  /**
   * The objective on fixed views (the evaluation stream, the same in every round) with batch
   * statistics, without gradients: comparable before and after local training.
   */
  evaluate(weights: Float32Array, indices: readonly number[]): number {
    const params = this.tensors(weights);
    try {
      const batch = this.batch(indices, EVAL_STREAM);
      try {
        return tf.tidy(() => this.objective(params, batch, true, []).dataSync()[0] ?? Number.NaN);
      } finally {
        tf.dispose(Object.values(batch));
      }
    } finally {
      tf.dispose(params);
    }
  }

  /** Pooled encoder features of the images at `indices`, un-augmented, batch norm in inference mode. */
  embed(weights: Float32Array, indices: readonly number[]): Float32Array {
    const params = this.tensors(weights);
    try {
      return tf.tidy(() => {
        const x = this.stack(indices, (index, out) => out.set(this.image(index)));
        const features = this.encode(params, x, false, []);
        return tf.mean(features, [1, 2]).dataSync() as Float32Array;
      });
    } finally {
      tf.dispose(params);
    }
  }

  private tensors(weights: Float32Array): tf.Tensor[] {
    return this.spec.tensors.map((tensor, index) => {
      const at = this.offsets.flat[index] ?? 0;
      return tf.tensor(weights.subarray(at, at + elementCount(tensor.shape)), tensor.shape, 'float32');
    });
  }

  private image(index: number): Float32Array {
    const pixels = this.images.size * this.images.size;
    return this.images.data.subarray(index * pixels, (index + 1) * pixels);
  }

  private stack(indices: readonly number[], fill: (index: number, out: Float32Array) => void): tf.Tensor4D {
    const { size } = this.images;
    const pixels = size * size;
    const data = new Float32Array(indices.length * pixels);
    for (const [k, index] of indices.entries()) fill(index, data.subarray(k * pixels, (k + 1) * pixels));
    return tf.tensor4d(data, [indices.length, size, size, 1]);
  }

  private batch(indices: readonly number[], stream: number): Record<string, tf.Tensor> {
    const { size } = this.images;
    if (this.spec.objective === 'masked-reconstruction') {
      const options = { ...DEFAULT_OBJECTIVE_OPTIONS, ...this.spec.objectiveOptions };
      const masks = this.stack(indices, (index, out) =>
        patchMask(
          size,
          options.maskPatchSize,
          options.maskRatio,
          new Rng(deriveSeed(this.seed, stream, index, 7)),
          out,
        ),
      );
      return { clean: this.stack(indices, (index, out) => out.set(this.image(index))), masks };
    }
    const view = (v: number) =>
      this.stack(indices, (index, out) =>
        augmentView(
          this.image(index),
          size,
          this.augmentation,
          new Rng(deriveSeed(this.seed, stream, index, v)),
          out,
        ),
      );
    return { first: view(1), second: view(2) };
  }

  /** The encoder; in training mode batch statistics are used and recorded into `moments`. */
  private encode(
    params: tf.Tensor[],
    x: tf.Tensor4D,
    training: boolean,
    moments: Float32Array[],
  ): tf.Tensor4D {
    const { epsilon } = this.layout;
    const normalise = (h: tf.Tensor4D, norm: NormLayer, relu: boolean): tf.Tensor4D => {
      const gamma = params[norm.gamma] as tf.Tensor1D;
      const beta = params[norm.beta] as tf.Tensor1D;
      if (training) {
        const [out, mean, variance] = batchNormReluTraining(h, gamma, beta, { relu, epsilon });
        moments.push(mean, variance);
        return out;
      }
      const out = tf.batchNorm(
        h,
        params[norm.mean] as tf.Tensor1D,
        params[norm.variance] as tf.Tensor1D,
        beta,
        gamma,
        epsilon,
      );
      return relu ? tf.relu(out) : out;
    };
    if (this.layout.resnet !== undefined) return resnetEncode(this.layout.resnet, params, x, normalise);
    let h = x;
    for (const block of this.layout.blocks) {
      h = normalise(tf.conv2d(h, params[block.kernel] as tf.Tensor4D, 2, 'same'), block, true);
    }
    return h;
  }

  private objective(
    params: tf.Tensor[],
    batch: Record<string, tf.Tensor>,
    training: boolean,
    moments: Float32Array[],
  ): tf.Scalar {
    if (this.layout.decoder !== undefined) {
      const clean = batch.clean as tf.Tensor4D;
      const masks = batch.masks as tf.Tensor4D;
      return maskedReconstructionLoss(
        this.encode(params, clean.mul(tf.scalar(1).sub(masks)), training, moments),
        params[this.layout.decoder.kernel] as tf.Tensor2D,
        params[this.layout.decoder.bias] as tf.Tensor1D,
        clean,
        masks,
      );
    }
    const head = this.layout.head;
    if (head === undefined) throw new TrainingInputError(`objective ${this.spec.objective} has no head`);
    const views = tf.concat([batch.first as tf.Tensor4D, batch.second as tf.Tensor4D], 0);
    const pooled = tf.mean(this.encode(params, views, training, moments), [1, 2]) as tf.Tensor2D;
    const hidden = tf.relu(
      tf.matMul(pooled, params[head.kernel1] as tf.Tensor2D).add(params[head.bias1] as tf.Tensor),
    );
    const projected = tf
      .matMul(hidden, params[head.kernel2] as tf.Tensor2D)
      .add(params[head.bias2] as tf.Tensor);
    const temperature = this.spec.objectiveOptions?.temperature ?? DEFAULT_OBJECTIVE_OPTIONS.temperature;
    return ntXentLoss(projected as tf.Tensor2D, temperature);
  }
}

/**
 * SimCLR's NT-Xent loss for `2n` projections where rows i and i + n are two views of one image:
 * mean over rows of -log softmax(sim / t)[positive], self-similarity excluded.
 */
export function ntXentLoss(projections: tf.Tensor2D, temperature: number): tf.Scalar {
  const rows = projections.shape[0];
  const half = rows / 2;
  const z = projections.div(tf.norm(projections, 'euclidean', 1, true).add(1e-8));
  const similarity = tf.matMul(z, z, false, true).div(temperature);
  const self = tf.eye(rows);
  const masked = similarity.mul(tf.scalar(1).sub(self)).sub(self.mul(1e9));
  const partner = tf.concat([z.slice([half, 0], [half, -1]), z.slice([0, 0], [half, -1])], 0);
  const positive = tf.sum(z.mul(partner), 1).div(temperature);
  return tf.mean(tf.logSumExp(masked, 1).sub(positive)) as tf.Scalar;
}

/**
 * SimMIM-style loss: a linear head maps each feature cell to the pixels of its `stride x stride`
 * area (pixel shuffle), and the mean absolute error counts masked pixels only.
 */
export function maskedReconstructionLoss(
  features: tf.Tensor4D,
  kernel: tf.Tensor2D,
  bias: tf.Tensor1D,
  clean: tf.Tensor4D,
  masks: tf.Tensor4D,
): tf.Scalar {
  const [batch, cells, , channels] = features.shape;
  const size = clean.shape[1];
  const stride = size / cells;
  const flat = features.reshape([batch * cells * cells, channels]);
  const predicted = tf
    .matMul(flat, kernel)
    .add(bias)
    .reshape([batch, cells, cells, stride, stride])
    .transpose([0, 1, 3, 2, 4])
    .reshape([batch, size, size, 1]);
  const error = tf.abs(predicted.sub(clean)).mul(masks);
  return tf.sum(error).div(tf.sum(masks).add(1e-8)) as tf.Scalar;
}

/**
 * Batch norm over (batch, height, width) with batch statistics, then ReLU (unless `relu` is
 * false), with a hand-written
 * gradient. tfjs's generic batch-norm gradient tiles per-channel vectors to the full activation
 * shape and reduces through transposes, which costs more than the convolutions on WASM; here every
 * per-channel sum is one pass ({@link columnSums}) and the rest is a few element-wise passes. Returns the output and the batch mean and (biased) variance as arrays.
 */
export function batchNormReluTraining(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  options: { relu?: boolean; epsilon?: number } = {},
): [tf.Tensor4D, Float32Array, Float32Array] {
  const { relu = true, epsilon = BN_EPSILON } = options;
  // On the native backend, TensorFlow's own fused kernels (native-fused.ts).
  if (relu) {
    const fused = nativeBatchNormReluTraining(x, gamma, beta, epsilon);
    if (fused !== undefined) return fused;
  }
  const shape = x.shape;
  const channels = shape[3];
  const count = shape[0] * shape[1] * shape[2];
  const stats: Float32Array[] = [];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, scale, offset, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const flat = input.reshape([count, channels]) as tf.Tensor2D;
    const mean = columnSums(flat).div(count);
    const centred = flat.sub(mean);
    const variance = columnSums(centred.square() as tf.Tensor2D).div(count);
    const rstd = tf.rsqrt(variance.add(epsilon));
    const normalised = centred.mul(rstd);
    const affine = normalised.mul(scale).add(offset);
    const value = (relu ? tf.relu(affine) : affine).reshape(shape);
    stats.push(mean.dataSync() as Float32Array, variance.dataSync() as Float32Array);
    save([normalised, rstd, value, scale]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xhat, invStd, y, g] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor, tf.Tensor];
        // Through the ReLU: the gradient passes where the output is positive.
        const upstream = (relu ? dy.mul(tf.step(y)) : dy).reshape([count, channels]) as tf.Tensor2D;
        const dBeta = columnSums(upstream);
        const dGamma = columnSums(upstream.mul(xhat));
        // dx = g * rstd / N * (N * dy - dBeta - xhat * dGamma)
        const factor = g.mul(invStd);
        const dx = upstream
          .mul(factor)
          .sub(xhat.mul(dGamma.mul(factor).div(count)))
          .sub(dBeta.mul(factor).div(count));
        return [dx.reshape(shape), dGamma.reshape([channels]), dBeta.reshape([channels])];
      },
    };
  });
  const out = op(x, gamma, beta) as tf.Tensor4D;
  return [out, stats[0] ?? new Float32Array(channels), stats[1] ?? new Float32Array(channels)];
}

function concatenate(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
