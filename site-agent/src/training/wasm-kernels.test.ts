import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knownAnswerProblems } from './known-answer.js';
import { columnSums, forceFilterGradStrategy, registerWasmTrainingKernels } from './wasm-kernels.js';

const values = (shape: number[], step: number) =>
  Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * step + 0.3));

/** Input and filter gradients of sum(conv(x, w)^2) on a backend, as arrays. */
function convGrads(
  xShape: number[],
  wShape: number[],
  stride: number,
  pad: 'same' | 'valid',
): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(values(xShape, 0.37), xShape as [number, number, number, number]);
    const w = tf.tensor4d(values(wShape, 0.11), wShape as [number, number, number, number]);
    const grads = tf.grads((...args: tf.Tensor[]) =>
      tf
        .conv2d(args[0] as tf.Tensor4D, args[1] as tf.Tensor4D, stride, pad)
        .square()
        .sum(),
    )([x, w]);
    return grads.map((g) => g.dataSync() as Float32Array);
  });
}

function maxRelativeError(actual: Float32Array, expected: Float32Array): number {
  let error = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    error = Math.max(error, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return error / scale;
}

beforeAll(async () => {
  tf.enableProdMode();
  await tf.setBackend('wasm');
  registerWasmTrainingKernels();
});

afterAll(() => forceFilterGradStrategy(undefined));

describe('WASM conv gradient kernels', () => {
  it.each([
    ['stride 2 same, odd side', [4, 9, 9, 3], [3, 3, 3, 5], 2, 'same'],
    ['stride 2 same, even side', [4, 8, 8, 3], [3, 3, 3, 5], 2, 'same'],
    ['stride 3 valid, 5x4 filter', [2, 11, 10, 2], [5, 4, 2, 3], 3, 'valid'],
    ['stride 1 same', [2, 7, 7, 4], [3, 3, 4, 6], 1, 'same'],
    ['1x1 stride 2', [2, 7, 7, 4], [1, 1, 4, 6], 2, 'valid'],
  ] as const)(
    '%s: both gradients match the pure-JS backend, both filter strategies',
    async (_label, xs, ws, s, pad) => {
      await tf.setBackend('cpu');
      const [dxRef, dwRef] = convGrads([...xs], [...ws], s, pad);
      await tf.setBackend('wasm');
      for (const strategy of ['dilated-conv', 'im2col-gemm'] as const) {
        forceFilterGradStrategy(strategy);
        const [dx, dw] = convGrads([...xs], [...ws], s, pad);
        expect(maxRelativeError(dx as Float32Array, dxRef as Float32Array)).toBeLessThan(1e-5);
        expect(maxRelativeError(dw as Float32Array, dwRef as Float32Array)).toBeLessThan(1e-5);
      }
      forceFilterGradStrategy(undefined);
    },
  );

  it('runs transposed matrix products on the fast path with the same result', async () => {
    const a = values([3, 5, 7], 0.2);
    const b = values([3, 5, 4], 0.7);
    const product = () =>
      tf.tidy(() => tf.matMul(tf.tensor3d(a, [3, 5, 7]), tf.tensor3d(b, [3, 5, 4]), true, false).dataSync());
    await tf.setBackend('cpu');
    const expected = product() as Float32Array;
    await tf.setBackend('wasm');
    expect(maxRelativeError(product() as Float32Array, expected)).toBeLessThan(1e-6);
  });

  it('sums columns', () => {
    const sums = tf.tidy(() => columnSums(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2])).dataSync());
    expect(Array.from(sums)).toEqual([9, 12]);
  });

  it.each([
    [5000, 7],
    [3000, 64],
    [33, 256],
  ])('sums %i x %i columns exactly as a row-by-row float64 sum, across row blocks', (rows, columns) => {
    const data = values([rows, columns], 0.37);
    const expected = new Float64Array(columns);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < columns; c++)
        expected[c] = (expected[c] as number) + (data[r * columns + c] as number);
    }
    const sums = tf.tidy(() => columnSums(tf.tensor2d(data, [rows, columns])).dataSync());
    expect(Array.from(sums)).toEqual(Array.from(Float32Array.from(expected)));
  });
});

describe('knownAnswerProblems', () => {
  it('passes on WASM with the training kernels', () => {
    expect(knownAnswerProblems()).toEqual([]);
  });

  it('rejects stock WASM, which has no filter-gradient kernel', () => {
    const kernel = tf.getKernel('Conv2DBackpropFilter', 'wasm');
    expect(kernel).toBeDefined();
    tf.unregisterKernel('Conv2DBackpropFilter', 'wasm');
    try {
      expect(knownAnswerProblems()).toEqual([
        expect.stringMatching(/^conv2d: Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'/),
      ]);
    } finally {
      if (kernel) tf.registerKernel(kernel);
    }
  });

  it('rejects a backend whose conv computes garbage', () => {
    const kernel = tf.getKernel('Conv2D', 'wasm');
    if (kernel === undefined) throw new Error('no Conv2D');
    tf.unregisterKernel('Conv2D', 'wasm');
    tf.registerKernel({
      ...kernel,
      kernelFunc: (args) => {
        const out = kernel.kernelFunc(args) as tf.TensorInfo;
        // An off-by-a-bit result, like a miscompiled kernel or a null GPU adapter returning zeros.
        const backend = args.backend as unknown as { typedArrayFromHeap(t: tf.TensorInfo): Float32Array };
        backend.typedArrayFromHeap(out)[0] = 0.5;
        return out;
      },
    });
    try {
      expect(knownAnswerProblems()).toEqual([
        expect.stringMatching(/^conv2d: output value 0 is 0\.5, expected/),
      ]);
    } finally {
      tf.unregisterKernel('Conv2D', 'wasm');
      tf.registerKernel(kernel);
    }
  });
});
