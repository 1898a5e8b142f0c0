/**
 * Fused training batch norm for the native (TensorFlow) backend: TensorFlow's own
 * `FusedBatchNormV3` (training mode) and `FusedBatchNormGradV3`, called through tfjs-node's
 * op executor, in place of the composite of ~15 element-wise and reduction ops the portable
 * version runs, each one a separate TensorFlow eager call over the whole activation.
 */
import * as tf from '@tensorflow/tfjs';

/** The parts of tfjs-node's NodeJSKernelBackend used here (not in tfjs's public types). */
interface NodeBackend {
  binding: Record<string, number>;
  executeMultipleOutputs(name: string, attrs: OpAttr[], inputs: tf.Tensor[], outputs: number): tf.Tensor[];
  executeSingleOutput(name: string, attrs: OpAttr[], inputs: tf.Tensor[]): tf.Tensor;
}
interface OpAttr {
  name: string;
  type: number;
  value: number | string | boolean;
}

function nodeBackend(): NodeBackend | undefined {
  if (tf.getBackend() !== 'tensorflow') return undefined;
  const backend = tf.backend() as unknown as Partial<NodeBackend>;
  return typeof backend.executeMultipleOutputs === 'function' && backend.binding !== undefined
    ? (backend as NodeBackend)
    : undefined;
}

/**
 * relu(batchNorm(x)) with batch statistics (NHWC), its gradient with respect to x, gamma and beta,
 * and the batch mean and biased variance; `undefined` when the current backend is not TensorFlow.
 */
export function nativeBatchNormReluTraining(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
): [tf.Tensor4D, Float32Array, Float32Array] | undefined {
  const backend = nodeBackend();
  if (backend === undefined) return undefined;
  const { binding } = backend;
  const type = (name: string): OpAttr => ({
    name,
    type: binding.TF_ATTR_TYPE ?? 0,
    value: binding.TF_FLOAT ?? 0,
  });
  const common: OpAttr[] = [
    type('T'),
    type('U'),
    { name: 'epsilon', type: binding.TF_ATTR_FLOAT ?? 0, value: epsilon },
    { name: 'data_format', type: binding.TF_ATTR_STRING ?? 0, value: 'NHWC' },
    { name: 'is_training', type: binding.TF_ATTR_BOOL ?? 0, value: true },
  ];
  const count = x.shape[0] * x.shape[1] * x.shape[2];
  const stats: Float32Array[] = [];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, scale, offset, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const empty = tf.tensor1d([], 'float32');
    const [y, mean, variance, r1, r2, r3] = backend.executeMultipleOutputs(
      'FusedBatchNormV3',
      [...common, { name: 'exponential_avg_factor', type: binding.TF_ATTR_FLOAT ?? 0, value: 1 }],
      [input, scale, offset, empty, empty],
      6,
    ) as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor, tf.Tensor, tf.Tensor];
    const value = tf.relu(y);
    // TensorFlow's batch variance output is Bessel-corrected (for the moving average); the
    // portable path and the moments the agent reports use the biased one.
    const biased = (variance.dataSync() as Float32Array).map((v) => (v * (count - 1)) / count);
    stats.push(mean.dataSync() as Float32Array, biased);
    save([input, scale, r1, r2, r3, value]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, g, s1, s2, s3, out] = saved as [
          tf.Tensor4D,
          tf.Tensor1D,
          tf.Tensor,
          tf.Tensor,
          tf.Tensor,
          tf.Tensor,
        ];
        // One ReluGrad op: tfjs-node's tf.step is a composite of five ops over the activation.
        const upstream = backend.executeSingleOutput('ReluGrad', [type('T')], [dy, out]);
        const [dx, dGamma, dBeta] = backend.executeMultipleOutputs(
          'FusedBatchNormGradV3',
          common,
          [upstream, xs, g, s1, s2, s3],
          5,
        );
        return [dx as tf.Tensor, dGamma as tf.Tensor, dBeta as tf.Tensor];
      },
    };
  });
  const out = op(x, gamma, beta) as tf.Tensor4D;
  const channels = x.shape[3];
  return [out, stats[0] ?? new Float32Array(channels), stats[1] ?? new Float32Array(channels)];
}
