/**
 * Child processes for the demo and the end-to-end tests: start with logs to a file, wait for a
 * condition, stop them all (SIGTERM, then SIGKILL) on exit or Ctrl-C.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The repository's binaries, run with the current Node. */
export const COORDINATOR_BIN = join(repo, 'coordinator/bin/radfed-coordinator.mjs');
export const AGENT_BIN = join(repo, 'site-agent/bin/radfed-agent.mjs');

export class ProcessGroup {
  readonly children = new Map<string, ChildProcess>();

  /** Starts `node script args...` with stdout+stderr appended to `logFile`. */
  start(
    name: string,
    script: string,
    args: string[],
    opts: { logFile: string; env?: NodeJS.ProcessEnv },
  ): ChildProcess {
    mkdirSync(dirname(opts.logFile), { recursive: true });
    const log = createWriteStream(opts.logFile, { flags: 'a' });
    const child = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    child.on('exit', () => {
      this.children.delete(name);
      log.end();
    });
    this.children.set(name, child);
    return child;
  }

  /** Sends SIGTERM to every child, then SIGKILL to any still running after `graceMs`. */
  async stopAll(graceMs = 10_000): Promise<void> {
    const alive = [...this.children.values()].filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(
      alive.map(
        (c) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
  }
}

/** Runs `node script args...` to completion; resolves with its exit code and output. */
export function runToEnd(
  script: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, out }));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  everyMs = 250,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

export interface AgentSite {
  name: string;
  /** The site's image folder. */
  dir: string;
}

/**
 * Enrols a site with `radfed-agent enrol` (its keys and CSR are made in `stateDir`), then starts
 * `radfed-agent run` on its images in `group`, logging to `logDir/<site>.log`. Throws with the
 * agent's output when enrolment fails.
 */
export async function enrolAndRunAgent(
  group: ProcessGroup,
  site: AgentSite,
  o: { address: string; caPath: string; token: string; stateDir: string; logDir: string },
): Promise<ChildProcess> {
  const res = await runToEnd(AGENT_BIN, [
    'enrol',
    '--coordinator',
    o.address,
    '--ca',
    o.caPath,
    '--token',
    o.token,
    '--state-dir',
    o.stateDir,
  ]);
  if (res.code !== 0) throw new Error(`enrolment of ${site.name} failed: ${res.out.trim()}`);
  return group.start(site.name, AGENT_BIN, ['run', '--state-dir', o.stateDir, '--data', site.dir], {
    logFile: join(o.logDir, `${site.name}.log`),
  });
}
