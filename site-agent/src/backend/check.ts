/** Runs a backend's known-answer check in a child process (see check-child.ts). */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BackendId } from '../training/backend.js';

export const RESULT_PREFIX = 'radfed-known-answer ';

export interface CheckResult {
  /** The backend checked (for `auto`, the one selected; `auto` when none could be). */
  id: BackendId | 'auto';
  passed: boolean;
  /** Why it failed or is unavailable (empty when it passed). */
  reason: string;
  detail?: string;
  /** Load, initialise and first check, in ms (includes kernel set-up). */
  firstMs?: number;
  /** The known-answer step again, warm, in ms. */
  warmMs?: number;
  /** For `auto`: the candidates passed over before `id`, and why. */
  skipped?: { id: BackendId; reason: string }[];
}

const CHILD = fileURLToPath(new URL('./check-child.mjs', import.meta.url));

/**
 * The known-answer result of backend `id` (`auto`: whichever the agent's order selects), with `backendsHome` as the agent's backends folder.
 * Never throws: a child that crashes or hangs (killed after `timeoutMs`) is a failed check.
 */
export function checkBackend(
  id: BackendId | 'auto',
  backendsHome: string,
  timeoutMs = 120_000,
): Promise<CheckResult> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, RADFED_BACKENDS_DIR: backendsHome };
    delete env.RADFED_TFJS_BACKEND;
    const child = spawn(process.execPath, [CHILD, id], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err = (err + chunk).slice(-2000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (line !== undefined) {
        resolve(JSON.parse(line.slice(RESULT_PREFIX.length)) as CheckResult);
        return;
      }
      const last = err.trim().split('\n').slice(-3).join(' ').slice(0, 400);
      resolve({
        id,
        passed: false,
        reason: `the check process ${signal !== null ? `was killed (${signal})` : `exited with code ${code}`} before reporting${last ? `: ${last}` : ''}`,
      });
    });
  });
}
