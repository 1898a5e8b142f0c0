/**
 * Coordinator fixtures: one in this process (for suites that reach into its database or engine) and
 * one as a real `radfed-coordinator` process (for suites that kill or restart it). Both listen on a
 * free port with a development PKI in a fresh directory, and resolve once an operator call answers.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Coordinator,
  type CoordinatorConfig,
  loadCoordinatorConfig,
  OperatorClient,
  startCoordinator,
  tlsFromPkiDir,
} from '@radfed/coordinator';
import { COORDINATOR_BIN, freePort, type ProcessGroup, waitFor } from '@radfed/coordinator/testing';
import { type Logger, silentLogger } from '@radfed/shared';

/** A coordinator running in the test process, with an operator client and the CA agents trust. */
export interface InProcessCoordinator {
  /** Scratch directory of the suite: `coord/` holds the coordinator's data; the rest is free. */
  dir: string;
  config: CoordinatorConfig;
  coord: Coordinator;
  address: string;
  op: OperatorClient;
  caPem: string;
  /** Closes the operator client, stops the coordinator and removes `dir`. */
  stop(): Promise<void>;
}

/**
 * Starts a coordinator in this process on a free port, in a new directory named after `name`.
 * `flags` are coordinator configuration fields (as `loadCoordinatorConfig` takes them), e.g.
 * `{ tickMs: 100 }` or `{ databaseUrl }`; the process environment is not read. `log` receives the
 * coordinator's log (default: nothing is logged).
 */
export async function startInProcessCoordinator(
  name: string,
  flags: Record<string, unknown> = {},
  log: Logger = silentLogger,
): Promise<InProcessCoordinator> {
  const dir = mkdtempSync(join(tmpdir(), `radfed-${name}-`));
  const config = loadCoordinatorConfig({ dataDir: join(dir, 'coord'), port: 0, ...flags }, {});
  const coord = await startCoordinator(config, log);
  const address = `127.0.0.1:${coord.port}`;
  const tls = tlsFromPkiDir(config.pkiDir);
  const op = new OperatorClient({ address, tls });
  return {
    dir,
    config,
    coord,
    address,
    op,
    caPem: tls.caCertPem,
    stop: async () => {
      op.close();
      await coord.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** How long a coordinator process may take to answer (PKI, database and migrations on first start). */
const START_TIMEOUT_MS = 120_000;

/** A `radfed-coordinator` child process and an operator client connected to it. */
export interface CoordinatorProcess {
  child: ChildProcess;
  port: number;
  address: string;
  dataDir: string;
  pkiDir: string;
  /** The development CA certificate agents are given (`--ca`). */
  caPath: string;
  logFile: string;
  op: OperatorClient;
}

export interface CoordinatorProcessOptions {
  /** The suite's directory: data in `dir/coordinator`, log in `dir/logs/coordinator.log`. */
  dir: string;
  /** Default: a free port. Pass the previous one to restart a coordinator where agents look for it. */
  port?: number;
  /** More command-line flags. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts `radfed-coordinator` in `group` (which stops it when the suite ends) and resolves once it
 * answers an operator call. Starting again with the same `dir` and `port` is a restart: the same data
 * directory, PKI and address.
 */
export async function startCoordinatorProcess(
  group: ProcessGroup,
  o: CoordinatorProcessOptions,
): Promise<CoordinatorProcess> {
  const port = o.port ?? (await freePort());
  const address = `127.0.0.1:${port}`;
  const dataDir = join(o.dir, 'coordinator');
  const pkiDir = join(dataDir, 'pki');
  const logFile = join(o.dir, 'logs/coordinator.log');
  const child = group.start(
    'coordinator',
    COORDINATOR_BIN,
    ['--data-dir', dataDir, '--port', String(port), ...(o.args ?? [])],
    { logFile, env: o.env },
  );
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) =>
      reject(new Error(`the coordinator exited (${signal ?? code}) before answering; see ${logFile}`)),
    ),
  );
  exited.catch(() => {}); // only a failure while waiting below matters
  const op = await Promise.race([
    waitFor(
      'the coordinator to answer',
      async () => {
        const c = new OperatorClient({ address, tls: tlsFromPkiDir(pkiDir) });
        try {
          await c.listFederations();
          return c;
        } catch (err) {
          c.close();
          throw err;
        }
      },
      START_TIMEOUT_MS,
    ),
    exited,
  ]);
  return { child, port, address, dataDir, pkiDir, caPath: join(pkiDir, 'ca.crt'), logFile, op };
}
