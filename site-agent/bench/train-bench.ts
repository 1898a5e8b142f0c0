/**
 * `pnpm bench:train`: training throughput of the reference encoder (`conv4`, 64x64, 585,568
 * trainable parameters) for each objective on each tfjs backend present, in one thread and with
 * one data-parallel worker thread per core, with the pure-JavaScript `cpu` backend as the baseline
 * measured in the same run. Also prints the GFLOP/s achieved next to the WASM backend's own peak
 * forward-conv GFLOP/s measured here, and peak memory (RSS, whole process including workers).
 *
 * "images/s" counts source images; a `simclr` image is two views (two forward/backward passes).
 * Options: --steps N (timed steps per case, default 6), --batch N (per worker, default 32),
 * --objectives a,b, --skip-cpu.
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { builtinModelSpec, type ModelSpec } from '@radfed/shared';
import * as tf from '@tensorflow/tfjs';
import { type BackendId, selectBackend } from '../src/training/backend.js';
import { viewsPerImage } from '../src/training/conv-model.js';
import { GradientPool } from '../src/training/gradient-pool.js';
import { initialWeights } from '../src/training/model.js';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '6' },
    batch: { type: 'string', default: '32' },
    objectives: { type: 'string', default: 'simclr,masked-reconstruction' },
    'skip-cpu': { type: 'boolean', default: false },
  },
});
const steps = Number(values.steps);
const perWorkerBatch = Number(values.batch);
const objectives = values.objectives.split(',');
const cores = availableParallelism();

interface Row {
  backend: string;
  objective: string;
  workers: number;
  batch: number;
  imagesPerSecond: number;
  gflops: number;
  peakRssMiB: number;
}

/** Multiply-adds x 2 of one view's training pass: forward, filter gradient, input gradient. */
function flopsPerView(spec: ModelSpec): number {
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

function syntheticImages(count: number, size: number): Float32Array {
  const data = new Float32Array(count * size * size);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.013) + Math.cos(i * 0.37);
  return data;
}

async function measure(
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

/** Best forward-conv GFLOP/s on WASM over the encoder's layer shapes and a large stride-1 conv. */
function wasmConvPeak(): { gflops: number; shape: string } {
  const cases: [number[], number[], number][] = [
    [[32, 32, 32, 32], [3, 3, 32, 64], 2],
    [[32, 16, 16, 64], [3, 3, 64, 128], 2],
    [[32, 8, 8, 128], [3, 3, 128, 256], 2],
    [[32, 32, 32, 64], [3, 3, 64, 64], 1],
    [[32, 16, 16, 128], [3, 3, 128, 128], 1],
    [[16, 16, 16, 256], [3, 3, 256, 256], 1],
  ];
  let best = { gflops: 0, shape: '' };
  for (const [xShape, wShape, stride] of cases) {
    const x = tf.randomNormal(xShape) as tf.Tensor4D;
    const w = tf.randomNormal(wShape) as tf.Tensor4D;
    const run = () => tf.tidy(() => tf.conv2d(x, w, stride, 'same').dataSync());
    run();
    let fastest = Number.POSITIVE_INFINITY;
    for (let r = 0; r < 5; r++) {
      const t = performance.now();
      run();
      fastest = Math.min(fastest, performance.now() - t);
    }
    const [b = 0, h = 0, wd = 0] = xShape;
    const [kh = 0, kw = 0, ci = 0, co = 0] = wShape;
    const flops = 2 * b * (h / stride) * (wd / stride) * kh * kw * ci * co;
    const gflops = flops / fastest / 1e6;
    if (gflops > best.gflops) best = { gflops, shape: `x[${xShape}] w[${wShape}] stride ${stride}` };
    tf.dispose([x, w]);
  }
  return best;
}

const rows: Row[] = [];
const began = performance.now();
const wasm = await selectBackend({ only: 'wasm' });
process.stdout.write(
  `conv4 64x64 (585,568 trainable parameters); ${cores} cores (${cpus()[0]?.model ?? 'unknown CPU'}); Node ${process.version}\n` +
    `backend: ${wasm.detail}; load average at start ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (other work on the machine lowers every figure)\n\n`,
);
const peak = wasmConvPeak();
for (const objective of objectives) {
  rows.push(await measure('wasm', objective, 1, perWorkerBatch, steps));
  if (cores > 1) rows.push(await measure('wasm', objective, cores, perWorkerBatch, steps));
}
if (!values['skip-cpu']) {
  // The pure-JS backend runs in worker threads so this process keeps WASM; 1 worker, small batch.
  for (const objective of objectives) rows.push(await measureCpu(objective));
}

async function measureCpu(objective: string): Promise<Row> {
  // This thread holds WASM, and tfjs has one backend per thread: the pure-JS backend runs in a
  // 2-worker pool (2 images each, one timed step); the summary divides by the worker count.
  return measure('cpu', objective, 2, 2, 1);
}

const pad = (text: string | number, width: number) => String(text).padStart(width);
process.stdout.write(
  `${'backend'.padEnd(8)}${'objective'.padEnd(24)}${pad('workers', 8)}${pad('batch', 7)}${pad('images/s', 10)}${pad('per core', 10)}${pad('GFLOP/s', 9)}${pad('peak RSS MiB', 14)}\n`,
);
for (const row of rows) {
  process.stdout.write(
    `${row.backend.padEnd(8)}${row.objective.padEnd(24)}${pad(row.workers, 8)}${pad(row.batch, 7)}${pad(row.imagesPerSecond.toFixed(1), 10)}${pad((row.imagesPerSecond / row.workers).toFixed(1), 10)}${pad(row.gflops.toFixed(2), 9)}${pad(row.peakRssMiB.toFixed(0), 14)}\n`,
  );
}
process.stdout.write(`\nWASM forward-conv peak here: ${peak.gflops.toFixed(1)} GFLOP/s (${peak.shape})\n`);
for (const objective of objectives) {
  const one = rows.find((r) => r.backend === 'wasm' && r.objective === objective && r.workers === 1);
  const all = rows.find((r) => r.backend === 'wasm' && r.objective === objective && r.workers === cores);
  const cpu = rows.find((r) => r.backend === 'cpu' && r.objective === objective);
  if (one === undefined) continue;
  const parts = [
    `${objective}: WASM 1 worker ${one.imagesPerSecond.toFixed(1)} images/s (${((one.gflops / peak.gflops) * 100).toFixed(0)}% of conv peak)`,
  ];
  if (all !== undefined)
    parts.push(`${cores} workers ${(all.imagesPerSecond / one.imagesPerSecond).toFixed(2)}x`);
  if (cpu !== undefined) {
    const cpuPerCore = cpu.imagesPerSecond / cpu.workers;
    parts.push(
      `vs pure JS ${cpuPerCore.toFixed(2)} images/s per core (${(one.imagesPerSecond / cpuPerCore).toFixed(0)}x)`,
    );
  }
  process.stdout.write(`${parts.join('; ')}\n`);
}
process.stdout.write(`\ntargets: >= 70 images/s per core on WASM; >= 1.8x with 2 workers on 2 cores\n`);
process.stdout.write(
  `bench took ${((performance.now() - began) / 1000).toFixed(0)} s; load average at end ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}\n`,
);
process.exit(0);
