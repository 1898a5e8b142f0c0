/**
 * The encoder as a tfjs LayersModel directory (`model.json` + `weights.bin`, the layout
 * `tf.loadLayersModel` reads in Node and in a browser): input [S, S, 1], output the pooled
 * features, with the same arithmetic as training's inference path (PyTorch-style symmetric
 * padding for the ResNets as explicit ZeroPadding2D layers).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelSpec } from '@radfed/shared';
import * as tf from '@tensorflow/tfjs';
import { type ConvLayout, convLayout } from '../training/conv-model.js';
import { unflattenWeights } from '../training/index.js';
import type { ConvUnit, NormLayer } from '../training/resnet-model.js';

/** Files a tfjs export writes. */
export const TFJS_FILES = ['model.json', 'weights.bin'] as const;

/** Builds the encoder with `weights` set. The caller disposes the model. */
export function encoderLayersModel(spec: ModelSpec, weights: Float32Array): tf.LayersModel {
  const layout = convLayout(spec);
  const parts = unflattenWeights(weights, spec);
  const assignments: { layer: tf.layers.Layer; values: Float32Array[]; shapes: number[][] }[] = [];
  const tensorOf = (index: number) => ({
    values: parts[index] as Float32Array,
    shape: spec.tensors[index]?.shape ?? [],
  });
  const input = tf.input({ shape: [spec.inputSize, spec.inputSize, 1], name: 'image' });
  const norm = (x: tf.SymbolicTensor, n: NormLayer, name: string) => {
    const layer = tf.layers.batchNormalization({ axis: 3, epsilon: layout.epsilon, name });
    const out = layer.apply(x) as tf.SymbolicTensor;
    const ts = [n.gamma, n.beta, n.mean, n.variance].map(tensorOf);
    assignments.push({ layer, values: ts.map((t) => t.values), shapes: ts.map((t) => t.shape) });
    return out;
  };
  const conv = (
    x: tf.SymbolicTensor,
    kernel: number,
    stride: number,
    padding: 'same' | 'valid',
    name: string,
  ) => {
    const { values, shape } = tensorOf(kernel);
    const layer = tf.layers.conv2d({
      filters: shape[3] ?? 1,
      kernelSize: [shape[0] ?? 1, shape[1] ?? 1],
      strides: stride,
      padding,
      useBias: false,
      name,
    });
    const out = layer.apply(x) as tf.SymbolicTensor;
    assignments.push({ layer, values: [values], shapes: [shape] });
    return out;
  };
  const relu = (x: tf.SymbolicTensor, name: string) => tf.layers.reLU({ name }).apply(x) as tf.SymbolicTensor;
  let h: tf.SymbolicTensor;
  if (layout.resnet !== undefined) {
    h = resnetGraph(spec, layout, input, conv, norm, relu);
  } else {
    h = input;
    for (const [k, block] of layout.blocks.entries()) {
      h = relu(norm(conv(h, block.kernel, 2, 'same', `conv${k + 1}`), block, `bn${k + 1}`), `relu${k + 1}`);
    }
  }
  const pooled = tf.layers.globalAveragePooling2d({ name: 'avgpool' }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({
    inputs: input,
    outputs: pooled,
    name: spec.architecture.replace(/[^A-Za-z0-9_]/g, '_'),
  });
  for (const { layer, values, shapes } of assignments) {
    const tensors = values.map((v, i) => tf.tensor(v, shapes[i]));
    layer.setWeights(tensors);
    tf.dispose(tensors);
  }
  return model;
}

type ConvFn = (
  x: tf.SymbolicTensor,
  kernel: number,
  stride: number,
  padding: 'same' | 'valid',
  name: string,
) => tf.SymbolicTensor;
type NormFn = (x: tf.SymbolicTensor, n: NormLayer, name: string) => tf.SymbolicTensor;
type ReluFn = (x: tf.SymbolicTensor, name: string) => tf.SymbolicTensor;

function resnetGraph(
  spec: ModelSpec,
  layout: ConvLayout,
  input: tf.SymbolicTensor,
  conv: ConvFn,
  norm: NormFn,
  relu: ReluFn,
): tf.SymbolicTensor {
  const resnet = layout.resnet!;
  // Layer names follow the spec's (torchvision's) module paths: encoder/layer2.0/conv1 -> layer2_0_conv1.
  const nameOf = (index: number) =>
    (spec.tensors[index]?.name ?? `t${index}`)
      .replace(/^encoder\//, '')
      .replace(/\/[a-z_]+$/, '')
      .replace(/[./]/g, '_');
  const unitOut = (x: tf.SymbolicTensor, unit: ConvUnit) => {
    const name = nameOf(unit.kernel);
    const padded =
      unit.pad === 0
        ? x
        : (tf.layers.zeroPadding2d({ padding: unit.pad, name: `${name}_pad` }).apply(x) as tf.SymbolicTensor);
    return norm(conv(padded, unit.kernel, unit.stride, 'valid', name), unit.norm, nameOf(unit.norm.gamma));
  };
  let h = relu(unitOut(input, resnet.stem), 'relu');
  // Zero padding is PyTorch's -inf padding here: the input is a ReLU output.
  h = tf.layers.zeroPadding2d({ padding: 1, name: 'maxpool_pad' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers
    .maxPooling2d({ poolSize: 3, strides: 2, padding: 'valid', name: 'maxpool' })
    .apply(h) as tf.SymbolicTensor;
  for (const block of resnet.blocks) {
    const prefix = nameOf(block.convs[0]?.kernel ?? 0).replace(/_conv1$/, '');
    let out = h;
    for (const [k, unit] of block.convs.entries()) {
      out = unitOut(out, unit);
      if (k < block.convs.length - 1) out = relu(out, `${prefix}_relu${k + 1}`);
    }
    const identity = block.downsample === undefined ? h : unitOut(h, block.downsample);
    const sum = tf.layers.add({ name: `${prefix}_add` }).apply([out, identity]) as tf.SymbolicTensor;
    h = relu(sum, `${prefix}_relu`);
  }
  return h;
}

/** Writes `model` as `model.json` + `weights.bin` into `dir` (which must exist). */
export async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData;
      const bytes = Array.isArray(data)
        ? Buffer.concat(data.map((part) => Buffer.from(part)))
        : Buffer.from(data ?? new ArrayBuffer(0));
      await writeFile(
        join(dir, 'model.json'),
        JSON.stringify({
          modelTopology: artifacts.modelTopology,
          format: artifacts.format,
          generatedBy: artifacts.generatedBy,
          convertedBy: null,
          weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
        }),
      );
      await writeFile(join(dir, 'weights.bin'), bytes);
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}
