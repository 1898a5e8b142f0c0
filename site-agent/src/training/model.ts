import type { ModelSpec } from '@radfed/shared';
import * as tf from '@tensorflow/tfjs';
import { TrainingInputError } from '../errors.js';
import { deriveSeed, uniformGenerator } from './random.js';
import { isResnet } from './resnet-model.js';

const elementCount = (shape: readonly number[]) => shape.reduce((product, dim) => product * dim, 1);

/**
 * Splits a flat weight vector into one array per tensor of `spec`, in spec order. The parts are
 * views into `flat`, not copies.
 *
 * @throws TrainingInputError when the length is not the spec's parameter count.
 */
export function unflattenWeights(flat: Float32Array, spec: ModelSpec): Float32Array[] {
  const total = spec.tensors.reduce((sum, tensor) => sum + elementCount(tensor.shape), 0);
  if (flat.length !== total) {
    throw new TrainingInputError(
      `weight vector has ${flat.length} values, but model "${spec.architecture}" has ${total}`,
    );
  }
  const parts: Float32Array[] = [];
  let offset = 0;
  for (const tensor of spec.tensors) {
    const size = elementCount(tensor.shape);
    parts.push(flat.subarray(offset, offset + size));
    offset += size;
  }
  return parts;
}

/**
 * Concatenates per-tensor arrays, in spec order, into one flat weight vector.
 *
 * @throws TrainingInputError when the number of parts or a part's length does not match the spec.
 */
export function flattenWeights(parts: readonly ArrayLike<number>[], spec: ModelSpec): Float32Array {
  if (parts.length !== spec.tensors.length) {
    throw new TrainingInputError(
      `got ${parts.length} weight tensors, but the spec lists ${spec.tensors.length}`,
    );
  }
  const sizes = spec.tensors.map((tensor) => elementCount(tensor.shape));
  const flat = new Float32Array(sizes.reduce((sum, size) => sum + size, 0));
  let offset = 0;
  for (const [index, part] of parts.entries()) {
    const tensor = spec.tensors[index];
    if (part.length !== sizes[index]) {
      throw new TrainingInputError(
        `tensor ${tensor?.name} has ${part.length} values, but its shape needs ${sizes[index]}`,
      );
    }
    flat.set(part, offset);
    offset += part.length;
  }
  return flat;
}

/**
 * A ResNet's starting weights: torchvision's scheme with uniform draws of the same variance, so
 * that only +, *, sqrt and a mulberry32 stream are involved (IEEE-exact, hence identical on every
 * machine, and fast for 25M values where tfjs's seeded initialisers take about a minute). Conv
 * kernels: U(-b, b) with b = sqrt(3) * sqrt(2 / fan_out) (Kaiming, fan_out, ReLU); dense kernels:
 * Glorot-uniform; the stream of tensor i is seeded with `deriveSeed(spec.seed, i)`. Batch-norm
 * scales and moving variances one, shifts, moving means and biases zero.
 */
function resnetInitialWeights(spec: ModelSpec): Float32Array {
  const parts = spec.tensors.map((tensor, index) => {
    const size = elementCount(tensor.shape);
    const out = new Float32Array(size);
    if (tensor.shape.length === 1) {
      if (/\/(gamma|moving_variance)$/.test(tensor.name)) out.fill(1);
      return out;
    }
    let bound: number;
    if (tensor.shape.length === 4) {
      const [kh = 1, kw = 1, , co = 1] = tensor.shape;
      bound = Math.sqrt(3) * Math.sqrt(2 / (kh * kw * co));
    } else {
      const [fanIn = 1, fanOut = 1] = tensor.shape;
      bound = Math.sqrt(6 / (fanIn + fanOut));
    }
    const next = uniformGenerator(deriveSeed(spec.seed, index));
    for (let i = 0; i < size; i++) out[i] = (2 * next() - 1) * bound;
    return out;
  });
  return flattenWeights(parts, spec);
}

/**
 * The model's starting weights for round 0, flat in spec order (ResNets: see
 * `resnetInitialWeights`): Glorot-uniform kernels (tensors of
 * rank 2 or more) seeded with `spec.seed + tensorIndex`, zero biases, batch-norm scales and moving
 * variances of one (zero shifts and moving means). tfjs draws seeded values in
 * JavaScript whatever the backend, so every site and process computes the same vector.
 */
export function initialWeights(spec: ModelSpec): Float32Array {
  if (isResnet(spec.architecture)) return resnetInitialWeights(spec);
  const parts = spec.tensors.map((tensor, index) =>
    tf.tidy(() => {
      const initializer =
        tensor.shape.length >= 2
          ? tf.initializers.glorotUniform({ seed: spec.seed + index })
          : /\/(gamma|moving_variance)$/.test(tensor.name)
            ? tf.initializers.ones()
            : tf.initializers.zeros();
      return initializer.apply(tensor.shape, 'float32').dataSync() as Float32Array;
    }),
  );
  return flattenWeights(parts, spec);
}

/**
 * The `dense-ae-32` denoising autoencoder as a tfjs layers model: inputSize^2 inputs -> Dense
 * (hidden units from the encoder kernel's shape, ReLU) -> Dense (inputSize^2, linear). Weights start
 * at zero; the caller sets them from a flat vector. Assumes `checkModelSpec(spec)` passed.
 */
export function buildDenseAutoencoder(spec: ModelSpec): tf.LayersModel {
  const pixels = spec.inputSize * spec.inputSize;
  const hidden = spec.tensors[0]?.shape[1] ?? 0;
  return tf.sequential({
    name: 'dense_ae',
    layers: [
      tf.layers.dense({
        name: 'encoder',
        inputShape: [pixels],
        units: hidden,
        activation: 'relu',
        kernelInitializer: 'zeros',
      }),
      tf.layers.dense({ name: 'decoder', units: pixels, activation: 'linear', kernelInitializer: 'zeros' }),
    ],
  });
}

/**
 * Writes a flat weight vector into a model whose weights are in spec order.
 *
 * @throws TrainingInputError when the model's weight shapes differ from the spec's.
 */
export function setFlatWeights(model: tf.LayersModel, flat: Float32Array, spec: ModelSpec): void {
  const parts = unflattenWeights(flat, spec);
  const current = model.getWeights();
  for (const [index, tensor] of spec.tensors.entries()) {
    const shape = current[index]?.shape ?? [];
    if (shape.length !== tensor.shape.length || shape.some((dim, i) => dim !== tensor.shape[i])) {
      throw new TrainingInputError(
        `model weight ${index} has shape [${shape.join(', ')}], but spec tensor ${tensor.name} is [${tensor.shape.join(', ')}]`,
      );
    }
  }
  const tensors = spec.tensors.map((tensor, index) => tf.tensor(parts[index] ?? [], tensor.shape, 'float32'));
  try {
    model.setWeights(tensors);
  } finally {
    tf.dispose(tensors);
  }
}

/** The model's weights as one flat vector in spec order (a copy). */
export function getFlatWeights(model: tf.LayersModel, spec: ModelSpec): Float32Array {
  return flattenWeights(
    model.getWeights().map((tensor) => tensor.dataSync() as Float32Array),
    spec,
  );
}
