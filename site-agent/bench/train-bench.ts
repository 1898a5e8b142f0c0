/**
 * `pnpm bench:train`: training throughput of the reference encoder (`conv4`, 64x64, 585,568
 * trainable parameters) for each objective on each tfjs backend present, in one thread and with
 * one data-parallel worker thread per core, with the pure-JavaScript `cpu` backend as the baseline
 * measured in the same run. Also prints the GFLOP/s achieved next to the WASM backend's own peak
 * forward-conv GFLOP/s measured here, and peak memory (RSS, whole process including workers).
 *
 * "images/s" counts source images; a `simclr` image is two views (two forward/backward passes).
 * With the native backend installed (`radfed-agent backend install native`) it also measures that,
 * in child processes, with TensorFlow on one intra-op thread, on all cores, and as one worker
 * thread per core; with PyTorch importable by `python3` it runs the reference PyTorch step
 * (`train-torch.py`, conv4 SimCLR) on one thread and on all cores. All cases are interleaved over
 * `--rounds` rounds and each reports its best round (other load only ever slows a case down); every
 * SimCLR row shows its ratio to PyTorch per core and on all cores.
 *
 * Options: --steps N (timed steps per case, default 6), --batch N (per worker, default 32),
 * --objectives a,b, --skip-cpu, --rounds N (default 2), --python CMD (default python3),
 * --skip-native, --skip-torch.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { nativeEntry, readNativeManifest } from '../src/backend/native-home.js';
import { selectBackend } from '../src/training/backend.js';
import { measure, type Row } from './measure.js';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '6' },
    batch: { type: 'string', default: '32' },
    objectives: { type: 'string', default: 'simclr,masked-reconstruction' },
    'skip-cpu': { type: 'boolean', default: false },
    rounds: { type: 'string', default: '2' },
    python: { type: 'string', default: 'python3' },
    'skip-native': { type: 'boolean', default: false },
    'skip-torch': { type: 'boolean', default: false },
  },
});
const steps = Number(values.steps);
const perWorkerBatch = Number(values.batch);
const objectives = values.objectives.split(',');
const cores = availableParallelism();

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

/** A case: where it runs and how it is labelled; `threads` is TensorFlow's or PyTorch's intra-op count. */
interface Case {
  key: string;
  objective: string;
  run: () => Promise<Row & { threads?: number }>;
}

const rounds = Math.max(1, Number(values.rounds));
const began = performance.now();
const wasm = await selectBackend({ only: 'wasm' });
const native = values['skip-native']
  ? undefined
  : nativeEntry() !== undefined
    ? readNativeManifest()
    : undefined;
const torchVersion = values['skip-torch'] ? undefined : probeTorch();
const HERE = fileURLToPath(new URL('.', import.meta.url));
process.stdout.write(
  `conv4 64x64 (585,568 trainable parameters); ${cores} cores (${cpus()[0]?.model ?? 'unknown CPU'}); Node ${process.version}\n` +
    `backend: ${wasm.detail}; load average at start ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (other work on the machine lowers every figure)\n` +
    `native: ${native === undefined ? (values['skip-native'] ? 'skipped' : 'not installed (radfed-agent backend install native)') : `TensorFlow ${native.tensorflow.version} (${native.tensorflow.wheel}), tfjs-node ${native.tfjsNode}`}\n` +
    `PyTorch: ${torchVersion ?? `not measured (${values['skip-torch'] ? 'skipped' : `${values.python} cannot import torch; pip install torch`})`}\n` +
    `${rounds} interleaved rounds, best of each case reported\n\n`,
);
const peak = wasmConvPeak();

function probeTorch(): string | undefined {
  const probe = spawnSync(values.python, ['-c', 'import torch; print(torch.__version__)'], {
    encoding: 'utf8',
  });
  return probe.status === 0 ? probe.stdout.trim() : undefined;
}

/** Runs `step-child.ts` in a fresh process with TensorFlow's thread pools sized `threads`. */
async function nativeCase(
  objective: string,
  workers: number,
  threads: number,
): Promise<Row & { threads: number }> {
  const child = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      `${HERE}step-child.ts`,
      '--backend',
      'native',
      '--objective',
      objective,
      '--workers',
      String(workers),
      '--batch',
      String(perWorkerBatch),
      '--steps',
      String(steps),
    ],
    {
      encoding: 'utf8',
      env: { ...process.env, TF_NUM_INTRAOP_THREADS: String(threads), TF_NUM_INTEROP_THREADS: '1' },
      maxBuffer: 64 * 2 ** 20,
    },
  );
  const line = child.stdout.split('\n').find((l) => l.startsWith('row '));
  if (line === undefined) {
    throw new Error(`native measurement failed: ${child.stderr.trim().split('\n').slice(-3).join(' ')}`);
  }
  return { ...(JSON.parse(line.slice(4)) as Row), threads };
}

async function torchCase(threads: number): Promise<Row & { threads: number }> {
  const child = spawnSync(
    values.python,
    [
      `${HERE}train-torch.py`,
      '--threads',
      String(threads),
      '--batch',
      String(perWorkerBatch),
      '--steps',
      String(steps),
    ],
    { encoding: 'utf8' },
  );
  if (child.status !== 0)
    throw new Error(`PyTorch measurement failed: ${child.stderr.trim().split('\n').slice(-2).join(' ')}`);
  const result = JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '{}') as { imagesPerSecond: number };
  return {
    backend: 'pytorch',
    objective: 'simclr',
    workers: 1,
    threads,
    batch: perWorkerBatch,
    imagesPerSecond: result.imagesPerSecond,
    gflops: 0,
    peakRssMiB: 0,
  };
}

const cases: Case[] = [];
for (const objective of objectives) {
  if (torchVersion !== undefined && objective === 'simclr') {
    cases.push({ key: `pytorch 1 thread ${objective}`, objective, run: () => torchCase(1) });
  }
  if (native !== undefined) {
    cases.push({ key: `native 1 thread ${objective}`, objective, run: () => nativeCase(objective, 1, 1) });
  }
  cases.push({
    key: `wasm 1 ${objective}`,
    objective,
    run: () => measure('wasm', objective, 1, perWorkerBatch, steps),
  });
  if (cores > 1) {
    if (torchVersion !== undefined && objective === 'simclr') {
      cases.push({ key: `pytorch ${cores} threads ${objective}`, objective, run: () => torchCase(cores) });
    }
    if (native !== undefined) {
      cases.push({
        key: `native ${cores} threads ${objective}`,
        objective,
        run: () => nativeCase(objective, 1, cores),
      });
      cases.push({
        key: `native ${cores} workers ${objective}`,
        objective,
        run: () => nativeCase(objective, cores, 1),
      });
    }
    cases.push({
      key: `wasm ${cores} ${objective}`,
      objective,
      run: () => measure('wasm', objective, cores, perWorkerBatch, steps),
    });
  }
}

const best = new Map<string, Row & { threads?: number }>();
const failures = new Map<string, string>();
for (let round = 0; round < rounds; round++) {
  for (const c of cases) {
    try {
      const row = await c.run();
      const previous = best.get(c.key);
      if (previous === undefined || row.imagesPerSecond > previous.imagesPerSecond) best.set(c.key, row);
    } catch (thrown) {
      failures.set(c.key, thrown instanceof Error ? thrown.message : String(thrown));
    }
  }
}
const rows = cases.flatMap((c) => best.get(c.key) ?? []);
if (!values['skip-cpu']) {
  // The pure-JS backend runs in worker threads so this process keeps WASM; 1 worker, small batch.
  for (const objective of objectives) rows.push(await measureCpu(objective));
}

async function measureCpu(objective: string): Promise<Row> {
  // This thread holds WASM, and tfjs has one backend per thread: the pure-JS backend runs in a
  // 2-worker pool (2 images each, one timed step); the summary divides by the worker count.
  return measure('cpu', objective, 2, 2, 1);
}

/** Cores a row uses: its workers times its intra-op threads. */
const coresOf = (row: Row & { threads?: number }) => row.workers * (row.threads ?? 1);
const torchOne = rows.find((r) => r.backend === 'pytorch' && r.threads === 1);
const torchAll = rows.find((r) => r.backend === 'pytorch' && r.threads === cores);
const ratio = (row: Row & { threads?: number }) => {
  if (row.objective !== 'simclr' || row.backend === 'cpu') return '';
  const reference = coresOf(row) === 1 ? torchOne : torchAll;
  return reference === undefined ? '' : `${(row.imagesPerSecond / reference.imagesPerSecond).toFixed(2)}x`;
};

const pad = (text: string | number, width: number) => String(text).padStart(width);
process.stdout.write(
  `${'backend'.padEnd(9)}${'objective'.padEnd(24)}${pad('workers', 8)}${pad('threads', 8)}${pad('batch', 7)}${pad('images/s', 10)}${pad('per core', 10)}${pad('GFLOP/s', 9)}${pad('peak RSS MiB', 14)}${pad('vs PyTorch', 12)}\n`,
);
for (const row of rows) {
  process.stdout.write(
    `${row.backend.padEnd(9)}${row.objective.padEnd(24)}${pad(row.workers, 8)}${pad((row as { threads?: number }).threads ?? 1, 8)}${pad(row.batch, 7)}${pad(row.imagesPerSecond.toFixed(1), 10)}${pad((row.imagesPerSecond / coresOf(row)).toFixed(1), 10)}${pad(row.gflops ? row.gflops.toFixed(2) : '-', 9)}${pad(row.peakRssMiB ? row.peakRssMiB.toFixed(0) : '-', 14)}${pad(ratio(row), 12)}\n`,
  );
}
for (const [key, message] of failures) process.stdout.write(`${key}: ${message}\n`);
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
process.stdout.write(
  `\ntargets: >= 70 images/s per core on WASM; >= 1.8x with 2 workers on 2 cores; native >= 0.9x PyTorch per core on conv4 SimCLR\n`,
);
process.stdout.write(
  `bench took ${((performance.now() - began) / 1000).toFixed(0)} s; load average at end ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}\n`,
);
process.exit(0);
