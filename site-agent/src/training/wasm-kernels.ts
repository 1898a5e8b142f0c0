/**
 * Training kernels the stock tfjs WASM backend lacks or runs slowly, so conv nets train on it.
 *
 * - `Conv2DBackpropFilter` is not registered at all in tfjs-backend-wasm 4.x. The filter gradient
 *   is a correlation of the input with the output gradient; it is computed here either as a
 *   dilated conv2d (input transposed to channels-as-batch, output gradient as the filter, dilation =
 *   stride), or, when the input has few channels or few positions, as im2col plus one matrix
 *   product. Both run on XNNPACK, the backend's SIMD GEMM.
 * - `Conv2DBackpropInput` exists but is a scalar loop (about 1.7 GFLOP/s here, a tenth of the
 *   forward conv). It is replaced by the phase decomposition of the transposed convolution: for
 *   stride s the input gradient splits into s*s interleaved phases, each a stride-1 conv2d of the
 *   output gradient with a sub-filter, so no multiply is spent on inserted zeros. Shapes outside
 *   the fast path (dilated, channels-first) go to the stock kernel.
 * - `BatchMatMul` with a transposed operand falls off XNNPACK onto a scalar loop (10-20x slower);
 *   dense layers' gradients ask for exactly that. The operand is transposed explicitly first.
 *
 * Everything runs on the backend's own heap through its kernels; nothing is copied to JavaScript
 * except small filter rearrangements.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type TensorInfo = tf.TensorInfo;
type NamedAttrMap = tf.NamedAttrMap;
type ExplicitPadding = [[number, number], [number, number], [number, number], [number, number]];

interface Conv2DBackpropAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

const BACKEND = 'wasm';

/** Filter-gradient strategy for one call; exported for the benchmark and tests. */
export type FilterGradStrategy = 'dilated-conv' | 'im2col-gemm';

/** Above this im2col buffer size the filter gradient uses the dilated conv, which needs no buffer. */
const IM2COL_MAX_BYTES = 128 * 2 ** 20;
/** Up to this many input channels the filter gradient uses im2col + GEMM. */
const IM2COL_MAX_CHANNELS = 4;

let forcedFilterStrategy: FilterGradStrategy | undefined;

/** Forces one filter-gradient strategy (tests and benchmarks); `undefined` restores the heuristic. */
export function forceFilterGradStrategy(strategy: FilterGradStrategy | undefined): void {
  forcedFilterStrategy = strategy;
}

let registered = false;

/**
 * Kernel name of the column sums of a 2-D tensor ([rows, columns] -> [1, columns]), registered for
 * WASM only; see {@link columnSums}.
 */
export const CHANNEL_SUMS = 'RadfedColumnSums';

/**
 * Sums over the rows of a 2-D tensor, e.g. per-channel sums of NHWC activations reshaped to
 * [N*H*W, C]. On WASM a direct pass over the heap (float64 accumulators, fixed order) replaces
 * tfjs's reduction, which transposes the whole tensor first; elsewhere it is `tf.sum(x, 0)`.
 * Not differentiable: use inside hand-written gradients.
 */
export function columnSums(x: tf.Tensor2D): tf.Tensor2D {
  if (tf.getBackend() === BACKEND && registered) {
    return tf.engine().runKernel(CHANNEL_SUMS, { x }, {}) as tf.Tensor2D;
  }
  return tf.sum(x, 0, true);
}

/**
 * Registers the kernels above for the `wasm` backend. Idempotent. Call after the backend has
 * been initialised (`await tf.setBackend('wasm')`): the stock kernels kept as fallbacks are set
 * up at initialisation, and the new ones need no setup.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  if (tf.findBackend(BACKEND) === null) {
    throw new Error('the tfjs WASM backend is not initialised; await tf.setBackend("wasm") first');
  }
  const stockInput = tf.getKernel('Conv2DBackpropInput', BACKEND);
  const stockMatMul = tf.getKernel('BatchMatMul', BACKEND);
  if (stockInput === undefined || stockMatMul === undefined) {
    throw new Error('the tfjs WASM backend is not loaded; import @tensorflow/tfjs-backend-wasm first');
  }
  registered = true;
  if (tf.getKernel('Conv2DBackpropFilter', BACKEND) === undefined) {
    tf.registerKernel({
      kernelName: 'Conv2DBackpropFilter',
      backendName: BACKEND,
      kernelFunc: ({ inputs, backend, attrs }) =>
        conv2dBackpropFilter(
          inputs.x as TensorInfo,
          inputs.dy as TensorInfo,
          backend as BackendWasm,
          attrs as unknown as Conv2DBackpropAttrs & { filterShape: number[] },
        ),
    });
  }
  tf.unregisterKernel('Conv2DBackpropInput', BACKEND);
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName: BACKEND,
    kernelFunc: (args) =>
      conv2dBackpropInput(
        args.inputs.dy as TensorInfo,
        args.inputs.filter as TensorInfo,
        args.backend as BackendWasm,
        args.attrs as unknown as Conv2DBackpropAttrs & { inputShape: number[] },
      ) ?? (stockInput.kernelFunc(args) as TensorInfo),
  });
  tf.registerKernel({
    kernelName: CHANNEL_SUMS,
    backendName: BACKEND,
    kernelFunc: ({ inputs, backend }) => channelSums(inputs.x as TensorInfo, backend as BackendWasm),
  });
  tf.unregisterKernel('BatchMatMul', BACKEND);
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: BACKEND,
    kernelFunc: (args) => batchMatMul(args, stockMatMul.kernelFunc),
  });
}

function run(name: string, backend: BackendWasm, inputs: tf.NamedTensorInfoMap, attrs: object): TensorInfo {
  const kernel = tf.getKernel(name, BACKEND);
  if (kernel === undefined) throw new Error(`tfjs WASM kernel ${name} is missing`);
  return kernel.kernelFunc({ inputs, backend, attrs: attrs as NamedAttrMap }) as TensorInfo;
}

function transpose(backend: BackendWasm, x: TensorInfo, perm: number[]): TensorInfo {
  return run('Transpose', backend, { x }, { perm });
}

function heap(backend: BackendWasm, info: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

function convInfo(
  xShape: number[],
  filterShape: number[],
  attrs: Conv2DBackpropAttrs,
): ReturnType<typeof tf.backend_util.computeConv2DInfo> {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(attrs.dataFormat),
  );
}

/** dW[kh,kw,ci,co] = sum over b,oh,ow of x[b, s*oh+kh-top, s*ow+kw-left, ci] * dy[b,oh,ow,co]. */
function conv2dBackpropFilter(
  x: TensorInfo,
  dy: TensorInfo,
  backend: BackendWasm,
  attrs: Conv2DBackpropAttrs & { filterShape: number[] },
): TensorInfo {
  if (attrs.dataFormat === 'NCHW') {
    throw new Error('Conv2DBackpropFilter on the WASM backend supports channels-last (NHWC) only');
  }
  const info = convInfo(x.shape, attrs.filterShape, attrs);
  const positions = info.batchSize * info.outHeight * info.outWidth;
  const colsBytes = positions * info.filterHeight * info.filterWidth * info.inChannels * 4;
  // Measured here (conv4's first layer, 64 views of 64x64): im2col takes 4 ms against the dilated
  // conv's 23 ms for a single input channel, where the conv's channels-as-batch transpose
  // dominates; at 32 input channels the dilated conv is ahead (55 ms against 67), and from 64 on
  // they are level, both bound by the same GEMM.
  const strategy =
    forcedFilterStrategy ??
    (info.inChannels <= IM2COL_MAX_CHANNELS && colsBytes <= IM2COL_MAX_BYTES
      ? 'im2col-gemm'
      : 'dilated-conv');
  return strategy === 'im2col-gemm'
    ? filterGradIm2col(x, dy, backend, info)
    : filterGradDilated(x, dy, backend, info);
}

type ConvInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

function filterGradDilated(x: TensorInfo, dy: TensorInfo, backend: BackendWasm, info: ConvInfo): TensorInfo {
  const { filterHeight: kh, filterWidth: kw, inChannels: ci, outChannels: co } = info;
  const { strideHeight: sh, strideWidth: sw, inHeight, inWidth, outHeight, outWidth } = info;
  const { top, left } = info.padInfo;
  // Channels become the batch and the batch becomes channels, so the correlation over (b, oh, ow)
  // is an ordinary conv2d whose "filter" is dy, dilated by the stride.
  const xt = transpose(backend, x, [3, 1, 2, 0]);
  const dyt = transpose(backend, dy, [1, 2, 0, 3]);
  const bottom = Math.max(0, kh + sh * (outHeight - 1) - inHeight - top);
  const right = Math.max(0, kw + sw * (outWidth - 1) - inWidth - left);
  let product: TensorInfo;
  try {
    product = run(
      'Conv2D',
      backend,
      { x: xt, filter: dyt },
      {
        strides: 1,
        pad: [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ],
        dataFormat: 'NHWC',
        dilations: [sh, sw],
      },
    );
  } finally {
    backend.disposeData(xt.dataId);
    backend.disposeData(dyt.dataId);
  }
  // product is [ci, kh', kw', co] with kh' >= kh; rows past kh read only padding, so crop them.
  const [, ph = 0, pw = 0] = product.shape;
  const out = backend.makeOutput([kh, kw, ci, co], 'float32');
  const src = heap(backend, product);
  const dst = heap(backend, out);
  for (let c = 0; c < ci; c++) {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const from = ((c * ph + i) * pw + j) * co;
        dst.set(src.subarray(from, from + co), ((i * kw + j) * ci + c) * co);
      }
    }
  }
  backend.disposeData(product.dataId);
  return out;
}

function filterGradIm2col(x: TensorInfo, dy: TensorInfo, backend: BackendWasm, info: ConvInfo): TensorInfo {
  const { filterHeight: kh, filterWidth: kw, inChannels: ci, outChannels: co, batchSize } = info;
  const { strideHeight: sh, strideWidth: sw, inHeight, inWidth, outHeight, outWidth } = info;
  const { top, left } = info.padInfo;
  const positions = batchSize * outHeight * outWidth;
  const row = kh * kw * ci;
  // colsT[(i, j, c), (b, oh, ow)] is the im2col matrix already transposed, so dW = colsT . dy is
  // one GEMM whose result is the filter layout and whose right operand is dy as it lies: no
  // transpose of dy or of the result, and XNNPACK packs only dy (positions x co) rather than the
  // 9x larger im2col matrix.
  const colsT = backend.makeOutput([1, row, positions], 'float32');
  const colsData = heap(backend, colsT);
  const xData = heap(backend, x);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      for (let c = 0; c < ci; c++) {
        let to = ((i * kw + j) * ci + c) * positions;
        for (let b = 0; b < batchSize; b++) {
          for (let oh = 0; oh < outHeight; oh++) {
            const ih = oh * sh + i - top;
            if (ih < 0 || ih >= inHeight) {
              colsData.fill(0, to, to + outWidth);
              to += outWidth;
              continue;
            }
            const base = (b * inHeight + ih) * inWidth;
            for (let ow = 0; ow < outWidth; ow++, to++) {
              const iw = ow * sw + j - left;
              colsData[to] = iw < 0 || iw >= inWidth ? 0 : (xData[(base + iw) * ci + c] as number);
            }
          }
        }
      }
    }
  }
  const dyMatrix = run('Reshape', backend, { x: dy }, { shape: [1, positions, co] });
  let product: TensorInfo;
  try {
    product = run(
      'BatchMatMul',
      backend,
      { a: colsT, b: dyMatrix },
      { transposeA: false, transposeB: false },
    );
  } finally {
    backend.disposeData(colsT.dataId);
    backend.disposeData(dyMatrix.dataId);
  }
  const out = run('Reshape', backend, { x: product }, { shape: [kh, kw, ci, co] });
  backend.disposeData(product.dataId);
  return out;
}

/**
 * Input gradient of a strided conv as s*s stride-1 convs: output row y gets taps kh with
 * kh = (y + top) mod s (mod s), i.e. phase r = (y + top) mod s uses taps r, r+s, r+2s, ...
 * Returns `undefined` for shapes the fast path does not cover.
 */
function conv2dBackpropInput(
  dy: TensorInfo,
  filter: TensorInfo,
  backend: BackendWasm,
  attrs: Conv2DBackpropAttrs & { inputShape: number[] },
): TensorInfo | undefined {
  if (attrs.dataFormat === 'NCHW') return undefined;
  const info = convInfo(attrs.inputShape, filter.shape, attrs);
  const { filterHeight: kh, filterWidth: kw, inChannels: ci, outChannels: co, batchSize } = info;
  const { strideHeight: sh, strideWidth: sw, inHeight, inWidth, outHeight, outWidth } = info;
  const { top, left } = info.padInfo;
  const rows = phases(sh, kh, top, inHeight, outHeight);
  const cols = phases(sw, kw, left, inWidth, outWidth);
  if (rows === undefined || cols === undefined) return undefined;

  const out = backend.makeOutput([batchSize, inHeight, inWidth, ci], 'float32');
  heap(backend, out).fill(0);
  const filterData = Float32Array.from(heap(backend, filter));
  for (const py of rows) {
    for (const px of cols) {
      if (py.taps === 0 || px.taps === 0 || py.count === 0 || px.count === 0) continue;
      // Sub-filter [ty, tx, co, ci]: taps reversed (correlation over dy runs backwards in kh).
      const sub = backend.makeOutput([py.taps, px.taps, co, ci], 'float32');
      const subData = heap(backend, sub);
      for (let ty = 0; ty < py.taps; ty++) {
        const i = py.phase + sh * (py.taps - 1 - ty);
        for (let tx = 0; tx < px.taps; tx++) {
          const j = px.phase + sw * (px.taps - 1 - tx);
          const base = (ty * px.taps + tx) * co * ci;
          const from = (i * kw + j) * ci * co;
          for (let c = 0; c < ci; c++) {
            for (let o = 0; o < co; o++) subData[base + o * ci + c] = filterData[from + c * co + o] as number;
          }
        }
      }
      let part: TensorInfo;
      try {
        part = run(
          'Conv2D',
          backend,
          { x: dy, filter: sub },
          {
            strides: 1,
            pad: [
              [0, 0],
              [py.padBefore, py.padAfter],
              [px.padBefore, px.padAfter],
              [0, 0],
            ],
            dataFormat: 'NHWC',
            dilations: 1,
          },
        );
      } finally {
        backend.disposeData(sub.dataId);
      }
      const [, partHeight = 0, partWidth = 0] = part.shape;
      const src = heap(backend, part);
      const dst = heap(backend, out);
      // Plain loops: a typed-array set() per pixel costs about a microsecond in call overhead.
      for (let b = 0; b < batchSize; b++) {
        for (let oy = 0; oy < py.count; oy++) {
          const y = sh * (oy + py.first) + py.phase - top;
          for (let ox = 0; ox < px.count; ox++) {
            const xPos = sw * (ox + px.first) + px.phase - left;
            const from = ((b * partHeight + oy) * partWidth + ox) * ci;
            const to = ((b * inHeight + y) * inWidth + xPos) * ci;
            for (let c = 0; c < ci; c++) dst[to + c] = src[from + c] as number;
          }
        }
      }
      backend.disposeData(part.dataId);
    }
  }
  return out;
}

interface Phase {
  /** Tap offset r: this phase uses filter taps r, r + s, r + 2s, ... */
  phase: number;
  taps: number;
  /** First output-gradient index q of the phase; input index = s*q + r - pad. */
  first: number;
  /** Input positions in the phase. */
  count: number;
  padBefore: number;
  padAfter: number;
}

/** Per-axis phase plan; `undefined` when a phase would need negative padding (not covered). */
function phases(
  stride: number,
  filter: number,
  pad: number,
  inLength: number,
  outLength: number,
): Phase[] | undefined {
  const plan: Phase[] = [];
  for (let phase = 0; phase < stride; phase++) {
    const taps = phase < filter ? Math.ceil((filter - phase) / stride) : 0;
    const first = Math.max(0, Math.ceil((pad - phase) / stride));
    const last = Math.floor((inLength - 1 + pad - phase) / stride);
    const count = Math.max(0, last - first + 1);
    const padBefore = taps - 1 - first;
    if (taps > 0 && count > 0 && padBefore < 0) return undefined;
    // Output rows of the conv: outLength + padBefore + padAfter - taps + 1 >= count.
    const padAfter = Math.max(0, count - outLength - padBefore + taps - 1);
    plan.push({ phase, taps, first, count, padBefore, padAfter });
  }
  return plan;
}

/** Rows per block of {@link channelSums}: a block of up to 256 columns stays within L1 (16 KiB). */
const SUM_BLOCK_VALUES = 4096;

function channelSums(x: TensorInfo, backend: BackendWasm): TensorInfo {
  const [rows = 0, columns = 0] = x.shape;
  const out = backend.makeOutput([1, columns], 'float32');
  const data = heap(backend, x);
  const sums = new Float64Array(columns);
  // Each column is still summed row by row in float64, so the result is the plain loop's to the
  // bit; four columns at a time in locals over an L1-sized block of rows runs about 4x faster.
  const block = Math.max(1, Math.floor(SUM_BLOCK_VALUES / Math.max(1, columns)));
  const wide = columns - (columns % 4);
  for (let first = 0; first < rows; first += block) {
    const end = Math.min(rows, first + block);
    for (let c = 0; c < wide; c += 4) {
      let s0 = sums[c] as number;
      let s1 = sums[c + 1] as number;
      let s2 = sums[c + 2] as number;
      let s3 = sums[c + 3] as number;
      for (let at = first * columns + c, stop = end * columns; at < stop; at += columns) {
        s0 += data[at] as number;
        s1 += data[at + 1] as number;
        s2 += data[at + 2] as number;
        s3 += data[at + 3] as number;
      }
      sums[c] = s0;
      sums[c + 1] = s1;
      sums[c + 2] = s2;
      sums[c + 3] = s3;
    }
    for (let c = wide; c < columns; c++) {
      let sum = sums[c] as number;
      for (let r = first; r < end; r++) sum += data[r * columns + c] as number;
      sums[c] = sum;
    }
  }
  heap(backend, out).set(sums);
  return out;
}

function batchMatMul(args: Parameters<tf.KernelFunc>[0], stock: tf.KernelFunc): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  if (!transposeA && !transposeB) return stock(args) as TensorInfo;
  const swapLast = (t: TensorInfo) =>
    transpose(
      backend,
      t,
      t.shape.map((_, i, all) => (i < all.length - 2 ? i : i === all.length - 2 ? i + 1 : i - 1)),
    );
  const at = transposeA ? swapLast(a) : a;
  const bt = transposeB ? swapLast(b) : b;
  try {
    return stock({
      inputs: { a: at, b: bt },
      backend,
      attrs: { ...args.attrs, transposeA: false, transposeB: false },
    }) as TensorInfo;
  } finally {
    if (transposeA) backend.disposeData(at.dataId);
    if (transposeB) backend.disposeData(bt.dataId);
  }
}
