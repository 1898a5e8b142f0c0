/**
 * RadFed's own forward pass of an exported encoder: pooled features of un-augmented images with
 * batch norm in inference mode, on the current tfjs backend (the same code training's k-NN probe
 * uses). What a PyTorch or tfjs load of an export must reproduce.
 */
import type { ModelSpec } from '@radfed/shared';
import { ConvComputer } from '../training/conv-model.js';

/** Features [images.length, width] (row-major) of `images` (each inputSize^2 values). */
export function encoderFeatures(
  spec: ModelSpec,
  weights: Float32Array,
  images: readonly Float32Array[],
): Float32Array {
  const pixels = spec.inputSize * spec.inputSize;
  const data = new Float32Array(images.length * pixels);
  for (const [k, image] of images.entries()) data.set(image, k * pixels);
  const computer = new ConvComputer(spec, { data, count: images.length, size: spec.inputSize }, spec.seed);
  return computer.embed(
    weights,
    images.map((_, k) => k),
  );
}
