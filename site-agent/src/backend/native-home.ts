/**
 * Where the agent keeps the backends it builds itself: `RADFED_BACKENDS_DIR`, default
 * `~/.radfed/backends`, outside the source tree so `pnpm install` never touches them. The native
 * backend is `<home>/native`: a private npm prefix holding `@tensorflow/tfjs-node` with its binding
 * compiled against the TensorFlow wheel's C library, plus the manifest written when it passed its
 * known-answer check. The folder exists only complete (it is renamed into place at the end).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function backendsHome(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.RADFED_BACKENDS_DIR;
  return dir !== undefined && dir !== '' ? resolve(dir) : join(homedir(), '.radfed', 'backends');
}

export const nativeDir = (home = backendsHome()) => join(home, 'native');

/** Written last by the installer; what `backend status` and the agent's log report. */
export interface NativeManifest {
  kind: 'native';
  gpu: boolean;
  tensorflow: { project: string; version: string; wheel: string; sha256: string };
  tfjsNode: string;
  builtAt: string;
  node: string;
  knownAnswer: { passed: boolean; ms: number };
}

export const MANIFEST = 'radfed-backend.json';

export function readNativeManifest(dir = nativeDir()): NativeManifest | undefined {
  const file = join(dir, MANIFEST);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as NativeManifest;
  } catch {
    return undefined;
  }
}

/** The tfjs-node entry inside a native backend folder, or undefined when none is installed there. */
export function nativeEntry(dir = nativeDir()): string | undefined {
  if (readNativeManifest(dir) === undefined) return undefined;
  try {
    return createRequire(join(dir, 'package.json')).resolve('@tensorflow/tfjs-node');
  } catch {
    return undefined;
  }
}

export const describeNative = (m: NativeManifest) =>
  `TensorFlow ${m.tensorflow.version} C library (${m.gpu ? 'CUDA' : 'CPU, multi-threaded'}) from the ${m.tensorflow.project} wheel, tfjs-node ${m.tfjsNode} binding built here`;
