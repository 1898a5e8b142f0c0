/** The programs a native backend build runs, found on PATH before anything is downloaded. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { NativeInstallError } from '../errors.js';

/** Where Node's own headers are (`--nodedir`): the prefix of the running `node`. */
export const nodePrefix = () => resolve(dirname(process.execPath), '..');

const has = (cmd: string, env: NodeJS.ProcessEnv) =>
  spawnSync(cmd, ['--version'], { env, stdio: 'ignore' }).status === 0;

/** The pip command, if any: `pip3`, `pip`, or `python3 -m pip`. */
export function findPip(env: NodeJS.ProcessEnv): string[] | undefined {
  for (const candidate of [['pip3'], ['pip'], ['python3', '-m', 'pip']]) {
    const [cmd = '', ...args] = candidate;
    if (spawnSync(cmd, [...args, '--version'], { env, stdio: 'ignore' }).status === 0) return candidate;
  }
  return undefined;
}

/**
 * Checks the compiler toolchain node-gyp needs (a C++ compiler, make, Python 3), npm, and Node's
 * headers, before any download.
 *
 * @throws NativeInstallError listing every missing tool and how to get it.
 */
export function requireBuildTools(env: NodeJS.ProcessEnv): void {
  const missing: string[] = [];
  const cxx = env.CXX ?? 'c++';
  if (!has(cxx, env) && !has('g++', env)) missing.push(`a C++ compiler (${cxx} or g++)`);
  if (!has('make', env)) missing.push('make');
  if (!has('python3', env)) missing.push('python3 (node-gyp runs on it)');
  if (!has('npm', env)) missing.push('npm (it fetches @tensorflow/tfjs-node)');
  const headers = join(nodePrefix(), 'include', 'node', 'node_api.h');
  if (!existsSync(headers)) missing.push(`Node's headers (${headers})`);
  if (missing.length > 0) {
    throw new NativeInstallError(
      `Cannot build the native backend: missing ${missing.join(', ')}. On Debian/Ubuntu: apt-get install g++ make python3 npm (and libnode-dev where Node's headers are missing). Nothing was installed; the agent keeps using WASM.`,
    );
  }
}

/**
 * Runs `cmd` to completion.
 *
 * @throws NativeInstallError with `what`, and the last lines of its output, when it fails.
 */
export function runTool(
  what: string,
  cmd: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; log?: (line: string) => void },
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk).slice(-3000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (cause) =>
      reject(new NativeInstallError(`${what} failed: cannot run ${cmd}: ${cause.message}.`, { cause })),
    );
    child.on('close', (code) => {
      if (code === 0) {
        resolvePromise();
        return;
      }
      const lines = tail.trim().split('\n').slice(-8).join('\n');
      reject(new NativeInstallError(`${what} failed (${cmd} exited with ${code}):\n${lines}`));
    });
  });
}
