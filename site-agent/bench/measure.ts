/**
 * One `pnpm bench:train` measurement: training steps of conv4 through the agent's GradientPool on
 * one backend, timed after a warm-up step. Used in the bench process (WASM, cpu) and in
 * `step-child.ts` (native backends, which need a process of their own).
 */
import { builtinModelSpec, type ModelSpec } from '@radfed/shared';
import type { BackendId } from '../src/training/backend.js';
import { viewsPerImage } from '../src/training/conv-model.js';
import { GradientPool } from '../src/training/gradient-pool.js';
import { initialWeights } from '../src/training/model.js';

export interface Row {
  backend: string;
  objective: string;
  workers: number;
  batch: number;
  imagesPerSecond: number;
  gflops: number;
  peakRssMiB: number;
}

/** Multiply-adds x 2 of one view's training pass: forward, filter gradient, input gradient. */
export function flopsPerView(spec: ModelSpec): number {
  let flops = 0;
  let side = spec.inputSize;
  for (const tensor of spec.tensors) {
    const [kh = 0, kw = 0, ci = 0, co = 0] = tensor.shape;
    if (/^encoder\/conv\d+\/kernel$/.test(tensor.name)) {
      side /= 2;
      const macs = side * side * kh * kw * ci * co;
      // forward + filter gradient, and the input gradient except for the first layer (the image).
      flops += 2 * macs * (ci === 1 ? 2 : 3);
    } else if (tensor.shape.length === 2) {
      const rows = tensor.name.startsWith('decoder') ? side * side : 1;
      flops += 2 * rows * (tensor.shape[0] ?? 0) * (tensor.shape[1] ?? 0) * 3;
    }
  }
  return flops;
}

export function syntheticImages(count: number, size: number): Float32Array {
  const data = new Float32Array(count * size * size);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.013) + Math.cos(i * 0.37);
  return data;
}

export async function measure(
  backend: BackendId,
  objective: string,
  workers: number,
  batch: number,
  timed: number,
): Promise<Row> {
  const spec = builtinModelSpec('conv4', { objective, batchSize: batch * workers });
  const total = spec.batchSize;
  const images = { data: syntheticImages(total, spec.inputSize), count: total, size: spec.inputSize };
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  const pool = await GradientPool.create(spec, images, 1, backend, workers);
  try {
    const weights = initialWeights(spec);
    const indices = Array.from({ length: total }, (_, i) => i);
    await pool.step(weights, indices, 0); // warm-up: JIT, XNNPACK operator creation
    const started = performance.now();
    for (let s = 1; s <= timed; s++) await pool.step(weights, indices, s);
    const seconds = (performance.now() - started) / 1000;
    const imagesPerSecond = (timed * total) / seconds;
    peak = Math.max(peak, process.memoryUsage().rss);
    return {
      backend,
      objective,
      workers,
      batch: total,
      imagesPerSecond,
      gflops: (imagesPerSecond * viewsPerImage(objective) * flopsPerView(spec)) / 1e9,
      peakRssMiB: peak / 2 ** 20,
    };
  } finally {
    clearInterval(sampler);
    await pool.close();
  }
}
