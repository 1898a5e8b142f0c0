/**
 * The torchvision ResNet encoders (`resnet18`, `resnet50`) as tfjs ops over the tensors of a spec:
 * the same arithmetic as torchvision in `eval()` mode (explicit symmetric padding, as PyTorch
 * pads, not tfjs's `same`), and batch statistics in training mode.
 */
import { type ModelSpec, RESNET_STAGES, type ResnetArchitecture } from '@radfed/shared';
import * as tf from '@tensorflow/tfjs';
import { TrainingInputError } from '../errors.js';

/** torchvision's BatchNorm2d epsilon. */
export const RESNET_BN_EPSILON = 1e-5;

/** Positions in `spec.tensors` of one batch-norm layer, and its width. */
export interface NormLayer {
  gamma: number;
  beta: number;
  mean: number;
  variance: number;
  channels: number;
}

/** One convolution and the batch norm after it. */
export interface ConvUnit {
  kernel: number;
  stride: number;
  pad: number;
  norm: NormLayer;
}

/** A BasicBlock (two convs) or Bottleneck (three), with its projection shortcut if any. */
export interface ResidualBlock {
  convs: ConvUnit[];
  downsample?: ConvUnit;
}

export interface ResnetLayout {
  stem: ConvUnit;
  blocks: ResidualBlock[];
  /** Every batch norm in the order the forward pass meets it (the order of the moments). */
  norms: NormLayer[];
  /** Width of the pooled representation. */
  features: number;
}

export function isResnet(architecture: string): architecture is ResnetArchitecture {
  return Object.hasOwn(RESNET_STAGES, architecture);
}

/** Resolves the tensor positions of a ResNet spec. Assumes `checkModelSpec(spec)` passed. */
export function resnetLayout(spec: ModelSpec): ResnetLayout {
  const at = (name: string) => {
    const index = spec.tensors.findIndex((tensor) => tensor.name === name);
    if (index === -1) throw new TrainingInputError(`model spec has no tensor ${name}`);
    return index;
  };
  const norms: NormLayer[] = [];
  const unit = (conv: string, norm: string, stride: number): ConvUnit => {
    const kernel = at(`${conv}/kernel`);
    const shape = spec.tensors[kernel]?.shape ?? [];
    const layer: NormLayer = {
      gamma: at(`${norm}/gamma`),
      beta: at(`${norm}/beta`),
      mean: at(`${norm}/moving_mean`),
      variance: at(`${norm}/moving_variance`),
      channels: shape[3] ?? 0,
    };
    norms.push(layer);
    return { kernel, stride, pad: Math.floor((shape[0] ?? 1) / 2), norm: layer };
  };
  if (!isResnet(spec.architecture)) {
    throw new TrainingInputError(`${spec.architecture} is not a ResNet`);
  }
  const { blocks: counts, bottleneck } = RESNET_STAGES[spec.architecture];
  const stem = unit('encoder/conv1', 'encoder/bn1', 2);
  const blocks: ResidualBlock[] = [];
  for (const [stage, count] of counts.entries()) {
    for (let block = 0; block < count; block++) {
      const prefix = `encoder/layer${stage + 1}.${block}`;
      const stride = block === 0 && stage > 0 ? 2 : 1;
      const convs = (bottleneck ? [1, 2, 3] : [1, 2]).map((k) =>
        // torchvision (v1.5) puts a Bottleneck's stride on its 3x3 conv.
        unit(`${prefix}/conv${k}`, `${prefix}/bn${k}`, k === (bottleneck ? 2 : 1) ? stride : 1),
      );
      const downsample = spec.tensors.some((t) => t.name === `${prefix}/downsample.0/kernel`)
        ? unit(`${prefix}/downsample.0`, `${prefix}/downsample.1`, stride)
        : undefined;
      blocks.push(downsample === undefined ? { convs } : { convs, downsample });
    }
  }
  const features = blocks.at(-1)?.convs.at(-1)?.norm.channels ?? 0;
  return { stem, blocks, norms, features };
}

/**
 * Batch norm of `x` either with batch statistics (`training`; the caller records the moments) or
 * with the moving statistics, optionally followed by ReLU.
 */
export type NormFunction = (x: tf.Tensor4D, norm: NormLayer, relu: boolean) => tf.Tensor4D;

/** The ResNet encoder up to (not including) global average pooling: [N, H/32, W/32, features]. */
export function resnetEncode(
  layout: ResnetLayout,
  params: tf.Tensor[],
  x: tf.Tensor4D,
  normalise: NormFunction,
): tf.Tensor4D {
  const conv = (h: tf.Tensor4D, unit: ConvUnit) =>
    tf.conv2d(h, params[unit.kernel] as tf.Tensor4D, unit.stride, unit.pad);
  let h = normalise(conv(x, layout.stem), layout.stem.norm, true);
  // Zero padding equals PyTorch's -inf padding here: the input is a ReLU output, so >= 0.
  h = tf.maxPool(h, 3, 2, 1);
  for (const block of layout.blocks) {
    let out = h;
    for (const [k, unit] of block.convs.entries()) {
      out = normalise(conv(out, unit), unit.norm, k < block.convs.length - 1);
    }
    const identity =
      block.downsample === undefined ? h : normalise(conv(h, block.downsample), block.downsample.norm, false);
    h = tf.relu(out.add(identity) as tf.Tensor4D);
  }
  return h;
}
