/**
 * Known-answer checks for a tfjs backend: small computations whose results are known exactly or
 * computed here in plain JavaScript (float64), so a backend that is missing a kernel or computes
 * garbage (a broken driver, an emulated adapter, a miscompiled kernel) is caught before training.
 */
import * as tf from '@tensorflow/tfjs';

/** Relative error allowed against the float64 reference (float32 accumulation of ~50 terms). */
const TOLERANCE = 1e-4;

/** Problems found on the current backend; empty when it passes. */
export function knownAnswerProblems(): string[] {
  const problems: string[] = [];
  for (const [name, check] of [
    ['dense', denseCheck],
    ['conv2d', convCheck],
  ] as const) {
    try {
      const problem = check();
      if (problem !== undefined) problems.push(`${name}: ${problem}`);
    } catch (thrown) {
      problems.push(`${name}: ${(thrown as Error).message}`);
    }
  }
  return problems;
}

/** [[1,2],[3,4]] x [[5,6],[7,8]] through ReLU and a bias: small integers, exact in float32. */
function denseCheck(): string | undefined {
  const expected = [20, 23, 44, 51];
  const actual = tf.tidy(() => {
    const product = tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2]));
    return Array.from(tf.relu(product).add(tf.scalar(1)).dataSync());
  });
  if (actual.length === expected.length && actual.every((value, index) => value === expected[index])) {
    return undefined;
  }
  return `expected [${expected.join(', ')}], got [${actual.join(', ')}]`;
}

// A stride-2, 3x3, 'same' conv like the reference encoder's, on odd and even sides.
const X_SHAPE = [2, 7, 6, 3] as const;
const W_SHAPE = [3, 3, 3, 4] as const;
const STRIDE = 2;

/** Output, input gradient and filter gradient of sum(conv(x, w) * r) against a JS reference. */
function convCheck(): string | undefined {
  const x = values(X_SHAPE, 0.37);
  const w = values(W_SHAPE, 0.11);
  const reference = referenceConv(x, w);
  const r = values(reference.outShape, 0.23);
  const { y, dx, dw } = tf.tidy(() => {
    const xt = tf.tensor4d(x, [...X_SHAPE]);
    const wt = tf.tensor4d(w, [...W_SHAPE]);
    const rt = tf.tensor4d(r, reference.outShape);
    const out = tf.conv2d(xt, wt, STRIDE, 'same');
    const [gx, gw] = tf.grads((...args: tf.Tensor[]) =>
      tf.sum(tf.conv2d(args[0] as tf.Tensor4D, args[1] as tf.Tensor4D, STRIDE, 'same').mul(rt)),
    )([xt, wt]);
    return { y: out.dataSync(), dx: gx?.dataSync(), dw: gw?.dataSync() };
  });
  const expectedDx = new Float64Array(x.length);
  const expectedDw = new Float64Array(w.length);
  reference.backward(r, expectedDx, expectedDw);
  return (
    compare('output', y, reference.y) ??
    compare('input gradient', dx, expectedDx) ??
    compare('filter gradient', dw, expectedDw)
  );
}

function values(shape: readonly number[], step: number): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: size }, (_, i) => Math.sin(i * step + 0.5));
}

function compare(
  what: string,
  actual: ArrayLike<number> | undefined,
  expected: ArrayLike<number>,
): string | undefined {
  if (actual === undefined || actual.length !== expected.length) {
    return `${what} has ${actual?.length ?? 0} values, expected ${expected.length}`;
  }
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i] as number));
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs((actual[i] as number) - (expected[i] as number));
    if (!(error <= TOLERANCE * Math.max(1, scale))) {
      return `${what} value ${i} is ${actual[i]}, expected ${(expected[i] as number).toFixed(6)}`;
    }
  }
  return undefined;
}

/** Direct-loop conv2d (NHWC, 'same' padding as TensorFlow defines it) in float64. */
function referenceConv(x: Float32Array, w: Float32Array) {
  const [batch, height, width, inC] = X_SHAPE;
  const [kh, kw, , outC] = W_SHAPE;
  const outH = Math.ceil(height / STRIDE);
  const outW = Math.ceil(width / STRIDE);
  const top = Math.floor(Math.max(0, (outH - 1) * STRIDE + kh - height) / 2);
  const left = Math.floor(Math.max(0, (outW - 1) * STRIDE + kw - width) / 2);
  const outShape: [number, number, number, number] = [batch, outH, outW, outC];
  const taps = function* () {
    for (let b = 0; b < batch; b++)
      for (let oy = 0; oy < outH; oy++)
        for (let ox = 0; ox < outW; ox++)
          for (let i = 0; i < kh; i++)
            for (let j = 0; j < kw; j++) {
              const iy = oy * STRIDE + i - top;
              const ix = ox * STRIDE + j - left;
              if (iy < 0 || iy >= height || ix < 0 || ix >= width) continue;
              for (let c = 0; c < inC; c++)
                for (let o = 0; o < outC; o++) {
                  yield {
                    yAt: ((b * outH + oy) * outW + ox) * outC + o,
                    xAt: ((b * height + iy) * width + ix) * inC + c,
                    wAt: ((i * kw + j) * inC + c) * outC + o,
                  };
                }
            }
  };
  const y = new Float64Array(batch * outH * outW * outC);
  for (const { yAt, xAt, wAt } of taps())
    y[yAt] = (y[yAt] as number) + (x[xAt] as number) * (w[wAt] as number);
  return {
    outShape,
    y,
    backward(r: Float32Array, dx: Float64Array, dw: Float64Array) {
      for (const { yAt, xAt, wAt } of taps()) {
        dx[xAt] = (dx[xAt] as number) + (r[yAt] as number) * (w[wAt] as number);
        dw[wAt] = (dw[wAt] as number) + (r[yAt] as number) * (x[xAt] as number);
      }
    },
  };
}
