import { totalmem } from 'node:os';
import { pathToFileURL } from 'node:url';
import type { ModelSpec } from '@radfed/shared';
import * as tf from '@tensorflow/tfjs';
import { describeNative, nativeDir, nativeEntry, readNativeManifest } from '../backend/native-home.js';
import { BackendCheckError } from '../errors.js';
import { knownAnswerProblems } from './known-answer.js';

/** Where a backend comes from, fastest first: the order {@link selectBackend} tries them in. */
export const BACKEND_CANDIDATES = [
  { id: 'tfjs-node-gpu', module: '@tensorflow/tfjs-node-gpu', backend: 'tensorflow' },
  // Built by `radfed-agent backend install native` in the agent's backends folder (native-home.ts).
  { id: 'native', module: 'native', backend: 'tensorflow' },
  { id: 'tfjs-node', module: '@tensorflow/tfjs-node', backend: 'tensorflow' },
  { id: 'wasm', module: '@tensorflow/tfjs-backend-wasm', backend: 'wasm' },
  { id: 'cpu', module: undefined, backend: 'cpu' },
] as const;

/**
 * A candidate's id: `tfjs-node-gpu`, `native` (tfjs-node built on the TensorFlow wheel by
 * `radfed-agent backend install native`), `tfjs-node`, `wasm` or `cpu` (pure JavaScript).
 */
export type BackendId = (typeof BACKEND_CANDIDATES)[number]['id'];

/** The tfjs backend in use. */
export interface SelectedBackend {
  /** Which candidate won, e.g. `wasm`. */
  id: BackendId;
  /** tfjs backend name, e.g. `wasm` (`tensorflow` for both native packages). */
  name: string;
  /** Human-readable detail for the log: SIMD, threads, why faster candidates were skipped. */
  detail: string;
  /** Candidates tried before this one and why each was passed over. */
  skipped: { id: BackendId; reason: string }[];
  /** Why this one trains, for the log: forced, or the first in order to load and pass its check. */
  reason: string;
  /** Milliseconds to load, initialise and check it (a first run: includes kernel set-up). */
  knownAnswerMs: number;
}

export interface SelectBackendOptions {
  /**
   * Use only this candidate (tests, benchmarks, or a site that wants a specific one: the agent
   * passes its `RADFED_TFJS_BACKEND` setting). Default: try all, fastest first.
   */
  only?: BackendId;
}

let selected: SelectedBackend | undefined;

/**
 * Selects the fastest tfjs backend present and proves it computes correctly before any site data
 * touches it: `@tensorflow/tfjs-node-gpu` when the site installed it, then `@tensorflow/tfjs-node`,
 * then WASM (SIMD; with RadFed's conv-gradient kernels, see `wasm-kernels.ts`), then plain
 * JavaScript. The native packages are optional and loaded at run time only if installed. Each
 * candidate must pass known-answer checks (a dense layer, and a strided conv's output and both of
 * its gradients against a JavaScript reference); one that fails is skipped with its reason, so a
 * broken backend never trains. Also enables tfjs production mode (no per-op debug checks).
 *
 * Selecting again returns the first selection (tfjs has one global backend per process).
 *
 * @throws BackendCheckError when no candidate works, listing why each failed.
 */
export async function selectBackend(options: SelectBackendOptions = {}): Promise<SelectedBackend> {
  if (selected !== undefined) return selected;
  tf.enableProdMode();
  const only = options.only;
  const skipped: { id: BackendId; reason: string }[] = [];
  for (const candidate of BACKEND_CANDIDATES) {
    if (only !== undefined && candidate.id !== only) continue;
    const started = performance.now();
    const reason = await tryCandidate(candidate);
    if (reason === undefined) {
      const knownAnswerMs = Math.round(performance.now() - started);
      selected = {
        id: candidate.id,
        name: tf.getBackend(),
        detail: await describe(candidate.id),
        skipped,
        reason:
          only !== undefined
            ? `chosen by the caller (the agent's RADFED_TFJS_BACKEND setting); passed its known-answer check`
            : `the first of ${BACKEND_CANDIDATES.map((c) => c.id).join(', ')} to load and pass its known-answer check`,
        knownAnswerMs,
      };
      return selected;
    }
    skipped.push({ id: candidate.id, reason });
  }
  throw new BackendCheckError(
    `no usable tfjs backend: ${skipped.map((s) => `${s.id}: ${s.reason}`).join('; ')}`,
  );
}

/** Loads, activates and checks one candidate; the reason it cannot be used, or undefined. */
async function tryCandidate(candidate: (typeof BACKEND_CANDIDATES)[number]): Promise<string | undefined> {
  if (candidate.module !== undefined) {
    try {
      // A variable specifier keeps bundlers and tsc from requiring the optional native packages.
      let specifier: string = candidate.module;
      if (candidate.id === 'native') {
        const entry = nativeEntry();
        if (entry === undefined)
          return `not installed (run \`radfed-agent backend install native\`; looked in ${nativeDir()})`;
        specifier = pathToFileURL(entry).href;
      }
      // TensorFlow's C++ start-up banner (oneDNN, CPU features) is noise in the agent's log.
      if (candidate.backend === 'tensorflow') process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
      await import(specifier);
    } catch (thrown) {
      const code = (thrown as { code?: string }).code;
      return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
        ? 'not installed'
        : `failed to load: ${(thrown as Error).message}`;
    }
  }
  try {
    if (!(await tf.setBackend(candidate.backend))) return 'could not be initialised';
    await tf.ready();
    if (candidate.id === 'wasm') {
      const { registerWasmTrainingKernels } = await import('./wasm-kernels.js');
      registerWasmTrainingKernels();
    }
  } catch (thrown) {
    return `could not be initialised: ${(thrown as Error).message}`;
  }
  const problems = knownAnswerProblems();
  return problems.length === 0 ? undefined : `failed its known-answer check: ${problems.join('; ')}`;
}

async function describe(id: BackendId): Promise<string> {
  if (id === 'wasm') {
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    return `WASM (${simd ? 'SIMD' : 'no SIMD'}, single-threaded; one worker per core for training)`;
  }
  if (id === 'cpu') return 'plain JavaScript (slow: install nothing else only if WASM is unavailable)';
  if (id === 'native') {
    const manifest = readNativeManifest();
    return manifest === undefined ? 'TensorFlow C library (native)' : describeNative(manifest);
  }
  return id === 'tfjs-node-gpu'
    ? 'TensorFlow C library with CUDA'
    : 'TensorFlow C library (CPU, multi-threaded)';
}

/** Largest heap the WASM backend can address (wasm32). */
const WASM_HEAP_LIMIT = 4 * 2 ** 30;

/**
 * Why the selected backend cannot run `spec`'s training, as a sentence for the operator, or
 * `undefined` when it can: the estimated working memory of one training step (activations and
 * their gradients for every view of a batch, per worker) must fit the backend's address space
 * (4 GiB for WASM) and half of this machine's memory.
 */
export function backendCannotRun(spec: ModelSpec, backend: SelectedBackend, workers = 1): string | undefined {
  const bytes = stepMemoryBytes(spec, workers);
  const machine = totalmem() / 2;
  const limit = backend.id === 'wasm' ? Math.min(WASM_HEAP_LIMIT, machine / workers) : machine / workers;
  if (bytes > limit) {
    return `one training step of "${spec.architecture}" at ${spec.inputSize}x${spec.inputSize} with batch size ${spec.batchSize} needs about ${gib(bytes)} GiB per worker, more than the ${backend.id} backend can use here (${gib(limit)} GiB); lower inputSize or batchSize`;
  }
  return undefined;
}

/** Rough working memory of one step in one worker: 8 float32 copies of every activation. */
export function stepMemoryBytes(spec: ModelSpec, workers = 1): number {
  const perWorker = Math.ceil(spec.batchSize / Math.max(1, workers));
  const views = spec.objective === 'simclr' ? 2 : 1;
  let floats = spec.inputSize * spec.inputSize;
  if (spec.architecture === 'conv4') {
    for (const tensor of spec.tensors) {
      const match = /^encoder\/conv(\d+)\/kernel$/.exec(tensor.name);
      if (match === null) continue;
      const side = spec.inputSize / 2 ** Number(match[1]);
      floats += side * side * (tensor.shape[3] ?? 0);
    }
  }
  return perWorker * views * floats * 4 * 8;
}

const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(1);
