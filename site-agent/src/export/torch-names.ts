/**
 * The encoder's weights under PyTorch's names and layouts. A spec tensor `encoder/<module
 * path with / for .>/<part>` becomes `<module path>.<torch name>`: `kernel` (HWIO) -> `weight`
 * (OIHW), batch norm `gamma`/`beta`/`moving_mean`/`moving_variance` -> `weight`/`bias`/
 * `running_mean`/`running_var`, plus an int64 `num_batches_tracked` (0) per batch norm, as
 * `nn.BatchNorm2d` keeps. For the ResNets these are exactly torchvision's `state_dict` keys
 * without `fc`; for `conv4` they are `conv1..4.weight` and `bn1..4.*` (see `conv4Module` in
 * test/python). Heads (projection, decoder) are pretraining-only and not exported.
 */
import type { ModelSpec } from '@radfed/shared';
import { unflattenWeights } from '../training/index.js';
import type { NamedTensor } from './safetensors.js';

const PARTS: Record<string, string> = {
  kernel: 'weight',
  gamma: 'weight',
  beta: 'bias',
  moving_mean: 'running_mean',
  moving_variance: 'running_var',
  bias: 'bias',
};

/** The encoder's tensors with torchvision names, float32, kernels transposed to OIHW. */
export function torchStateDict(spec: ModelSpec, weights: Float32Array): NamedTensor[] {
  const parts = unflattenWeights(weights, spec);
  const out: NamedTensor[] = [];
  for (const [index, tensor] of spec.tensors.entries()) {
    if (!tensor.name.startsWith('encoder/')) continue;
    const slash = tensor.name.lastIndexOf('/');
    const module = tensor.name.slice('encoder/'.length, slash).replaceAll('/', '.');
    const part = tensor.name.slice(slash + 1);
    const torchPart = PARTS[part];
    if (torchPart === undefined) throw new Error(`no PyTorch name for ${tensor.name}`);
    const data = parts[index] as Float32Array;
    if (part === 'kernel' && tensor.shape.length === 4) {
      const [kh = 1, kw = 1, ci = 1, co = 1] = tensor.shape;
      out.push({
        name: `${module}.weight`,
        dtype: 'F32',
        shape: [co, ci, kh, kw],
        data: hwioToOihw(data, kh, kw, ci, co),
      });
      continue;
    }
    out.push({
      name: `${module}.${torchPart}`,
      dtype: 'F32',
      shape: tensor.shape,
      data: Float32Array.from(data),
    });
    if (part === 'moving_variance') {
      out.push({
        name: `${module}.num_batches_tracked`,
        dtype: 'I64',
        shape: [],
        data: new BigInt64Array(1),
      });
    }
  }
  return out;
}

function hwioToOihw(data: Float32Array, kh: number, kw: number, ci: number, co: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let h = 0; h < kh; h++) {
    for (let w = 0; w < kw; w++) {
      for (let i = 0; i < ci; i++) {
        const from = ((h * kw + w) * ci + i) * co;
        for (let o = 0; o < co; o++) out[((o * ci + i) * kh + h) * kw + w] = data[from + o] as number;
      }
    }
  }
  return out;
}
