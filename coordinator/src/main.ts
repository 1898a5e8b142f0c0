/**
 * `radfed-coordinator`: runs the coordinator (default) or prepares its dev PKI (`pki init`).
 * Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration.
 */
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLogger, exitWhenFlushed, initDevPki, quietIpServerNameWarning, runCli } from '@radfed/shared';
import { startCoordinator } from './app.js';
import { coordinatorConfigSchema, loadCoordinatorConfig } from './config/config.js';
import { ConfigError, UsageError } from './errors.js';

quietIpServerNameWarning();

const USAGE = `Usage: radfed-coordinator [serve] [options]
       radfed-coordinator pki init [--pki-dir DIR] [--san NAME]...

Options (each also settable in a JSON --config file or by environment variable):
  --config FILE            JSON file with any of the settings below
  --host ADDR              listen address (RADFED_HOST, default 127.0.0.1)
  --san NAME               a DNS name or IP the dev server certificate is valid for, besides localhost;
                           repeat for more (RADFED_SAN, comma-separated; config file: hosts)
  --port N                 gRPC port, 0 = any free port (RADFED_PORT, default 7443)
  --data-dir DIR           PGlite data, blobs, dev PKI (RADFED_DATA_DIR, default .radfed/coordinator)
  --database-url URL       PostgreSQL instead of PGlite (DATABASE_URL)
  --nats-url URL           NATS JetStream events instead of in-process (NATS_URL)
  --pki-dir DIR            CA and server certificate (RADFED_PKI_DIR, default DATA_DIR/pki)
  --max-message-bytes N    largest accepted gRPC message (default 4194304)
  --log-level LEVEL        debug|info|warn|error (RADFED_LOG_LEVEL, default info)
  --port-file FILE         write the bound port here once listening
  --heartbeat-seconds N    heartbeats on agents' task streams (RADFED_HEARTBEAT_SECONDS, default 10)
  --tick-ms N              how often the round engine checks deadlines (RADFED_TICK_MS, default 250)
  --shutdown-grace-seconds N
                           how long SIGTERM waits for in-flight calls (RADFED_SHUTDOWN_GRACE_SECONDS,
                           default 10)
  --ciphertext-retention-rounds N
                           keep stored updates of the N latest closed rounds per federation, delete
                           older ones (RADFED_CIPHERTEXT_RETENTION_ROUNDS, default 0 = keep all)
  --he-threads N           HE worker threads for folds (RADFED_HE_THREADS, default the cores, at most 8)
Transport limits:
  --handshake-timeout-seconds N   TLS handshake, then HTTP/2 preface, each (default 10)
  --keepalive-seconds N           between HTTP/2 keepalive pings (default 30)
  --keepalive-timeout-seconds N   a ping may go unanswered this long (default 10)
  --idle-connection-seconds N     a connection with no call is closed after (default 300)
  --max-connections N             open connections at once (default 1000)
  --max-concurrent-streams N      calls in flight on one connection (default 100)
  --upload-inactivity-seconds N   a silent upload fails with DEADLINE_EXCEEDED, bytes kept (default 60)
  (environment: RADFED_ and the setting in capitals, e.g. RADFED_MAX_CONNECTIONS)
`;

/** Every setting but `hosts` (flag `--san`) is a flag of its own: `tickMs` is `--tick-ms`. */
const SETTING_KEYS = Object.keys(coordinatorConfigSchema.shape).filter((key) => key !== 'hosts');
const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const SETTING_FLAGS = Object.fromEntries(
  SETTING_KEYS.map((key) => [kebab(key), { type: 'string' as const }]),
);

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...SETTING_FLAGS,
      config: { type: 'string' },
      san: { type: 'string', multiple: true },
      'port-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const command = positionals.join(' ') || 'serve';
  const flags: Record<string, unknown> = { config: values.config, hosts: values.san };
  for (const key of SETTING_KEYS) flags[key] = (values as Record<string, unknown>)[kebab(key)];
  const config = loadCoordinatorConfig(flags);
  if (command === 'pki init') {
    const pki = await initDevPki(config.pkiDir, { hosts: config.hosts });
    // The names the server certificate actually holds: an existing PKI keeps the names it was made with.
    const names = new X509Certificate(pki.coordinator.certPem).subjectAltName ?? '';
    process.stdout.write(
      `${pki.created ? 'Created' : 'Found'} a development PKI in ${pki.dir}; the coordinator's certificate is valid for ${names}.\n` +
        (!pki.created && config.hosts.length > 0
          ? 'It was kept as it is; remove the directory and run pki init again to change its names.\n'
          : ''),
    );
    return 0;
  }
  if (command !== 'serve') throw new UsageError(`Unknown command "${command}".\n\n${USAGE}`);

  const log = createLogger({ level: config.logLevel });
  const coordinator = await startCoordinator(config, log);
  if (values['port-file']) writeFileSync(values['port-file'], String(coordinator.port));
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals += 1;
      if (signals > 1) void exitWhenFlushed(1);
      log.info(`received ${sig}`);
      coordinator.stop().then(resolve, (err: unknown) => {
        log.error('unclean shutdown', { err: err as Error });
        void exitWhenFlushed(1);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  return 0;
}

const argv = process.argv.slice(2);
await runCli(() => main(argv), {
  program: 'radfed-coordinator',
  argv,
  failure: (err) => {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof UsageError || isParseArgsError(err)) return { exitCode: 2, code: 'USAGE', message };
    if (err instanceof ConfigError) return { exitCode: 2, code: 'CONFIG', message };
    return { exitCode: 1, code: 'ERROR', message };
  },
});

function isParseArgsError(err: unknown): boolean {
  return err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS');
}
