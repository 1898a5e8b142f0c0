/**
 * The coordinator's configuration, parsed once at start-up from (lowest to highest precedence) an
 * optional JSON file, environment variables and command-line flags. A bad value fails start-up with
 * a ConfigError naming the field.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.js';

export const coordinatorConfigSchema = z
  .object({
    /** Address to listen on. */
    host: z.string().min(1).default('127.0.0.1'),
    /** gRPC port; 0 picks a free one (tests). */
    port: z.coerce.number().int().min(0).max(65535).default(7443),
    /** Where PGlite data, blobs and the dev PKI live when not configured otherwise. */
    dataDir: z.string().min(1).default('.radfed/coordinator'),
    /** PostgreSQL URL; embedded PGlite under dataDir when absent. */
    databaseUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .optional(),
    /** NATS URL (JetStream); in-process events when absent. */
    natsUrl: z
      .string()
      .regex(/^(nats|tls):\/\//, 'must be a nats:// URL')
      .optional(),
    /** JetStream stream name for events; subjects are `<lowercased name>.<topic>`. */
    natsStream: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/)
      .default('RADFED'),
    /** Directory with ca.crt/ca.key/coordinator.crt/coordinator.key; a dev PKI is created there if empty. */
    pkiDir: z.string().optional(),
    /**
     * Extra DNS names / IPs the dev server certificate is valid for, besides localhost, 127.0.0.1
     * and ::1 (flag `--san`, repeatable; env `RADFED_SAN`, comma-separated). Not the listen address.
     */
    hosts: z.array(z.string().min(1)).default([]),
    /** Largest gRPC message accepted, in bytes (upload chunks must fit). */
    maxMessageBytes: z.coerce
      .number()
      .int()
      .min(64 * 1024)
      .max(64 * 1024 * 1024)
      .default(4 * 1024 * 1024),
    /** Seconds between heartbeats on agents' task streams. */
    heartbeatSeconds: z.coerce.number().min(1).max(300).default(10),
    /** How often the round engine checks deadlines, in ms. */
    tickMs: z.coerce.number().int().min(10).max(10_000).default(250),
    /** Seconds SIGTERM waits for in-flight calls before forcing them closed. */
    shutdownGraceSeconds: z.coerce.number().min(0).max(600).default(10),
    logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    /**
     * Ciphertext retention: keep the stored updates of this many most recent closed rounds per
     * federation and delete older ones (recorded in the ledger; their digests stay). 0 keeps all, so
     * `radfed audit verify` can recompute every round's aggregate.
     */
    ciphertextRetentionRounds: z.coerce.number().int().min(0).max(1_000_000).default(0),
    /**
     * Seconds a new connection has to finish the TLS handshake and then send the HTTP/2 preface
     * (each); a connection that is silent longer is closed.
     */
    handshakeTimeoutSeconds: z.coerce.number().min(0.01).max(600).default(10),
    /** Seconds between the server's HTTP/2 keepalive pings on each connection. */
    keepaliveSeconds: z.coerce.number().min(0.01).max(86_400).default(30),
    /** Seconds a keepalive ping may go unanswered before the connection is closed. */
    keepaliveTimeoutSeconds: z.coerce.number().min(0.01).max(600).default(10),
    /** Seconds a connection may stay open with no call in flight before the server closes it. */
    idleConnectionSeconds: z.coerce.number().min(0.01).max(86_400).default(300),
    /** Most open connections at once; further ones are refused until one closes. */
    maxConnections: z.coerce.number().int().min(1).max(1_000_000).default(1000),
    /** Most calls in flight at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
    maxConcurrentStreams: z.coerce.number().int().min(1).max(10_000).default(100),
    /**
     * Seconds an upload may go without a message before it fails with DEADLINE_EXCEEDED; its staged
     * bytes stay, so the site resumes from GetUploadStatus.
     */
    uploadInactivitySeconds: z.coerce.number().min(0.01).max(3600).default(60),
    /** HE worker threads for ciphertext folds and key checks; default the cores available, at most 8. */
    heThreads: z.coerce.number().int().min(1).max(64).optional(),
  })
  .strict();

export type CoordinatorConfig = z.infer<typeof coordinatorConfigSchema> & { pkiDir: string; blobDir: string };

const ENV: Record<string, keyof z.input<typeof coordinatorConfigSchema>> = {
  RADFED_HOST: 'host',
  RADFED_PORT: 'port',
  RADFED_DATA_DIR: 'dataDir',
  DATABASE_URL: 'databaseUrl',
  NATS_URL: 'natsUrl',
  RADFED_NATS_STREAM: 'natsStream',
  RADFED_PKI_DIR: 'pkiDir',
  RADFED_MAX_MESSAGE_BYTES: 'maxMessageBytes',
  RADFED_HEARTBEAT_SECONDS: 'heartbeatSeconds',
  RADFED_LOG_LEVEL: 'logLevel',
  RADFED_CIPHERTEXT_RETENTION_ROUNDS: 'ciphertextRetentionRounds',
  RADFED_SAN: 'hosts',
  RADFED_TICK_MS: 'tickMs',
  RADFED_SHUTDOWN_GRACE_SECONDS: 'shutdownGraceSeconds',
  RADFED_HANDSHAKE_TIMEOUT_SECONDS: 'handshakeTimeoutSeconds',
  RADFED_KEEPALIVE_SECONDS: 'keepaliveSeconds',
  RADFED_KEEPALIVE_TIMEOUT_SECONDS: 'keepaliveTimeoutSeconds',
  RADFED_IDLE_CONNECTION_SECONDS: 'idleConnectionSeconds',
  RADFED_MAX_CONNECTIONS: 'maxConnections',
  RADFED_MAX_CONCURRENT_STREAMS: 'maxConcurrentStreams',
  RADFED_UPLOAD_INACTIVITY_SECONDS: 'uploadInactivitySeconds',
  RADFED_HE_THREADS: 'heThreads',
};

/** Settings that hold a list; their environment variable is comma-separated. */
const LIST_SETTINGS = new Set<string>(['hosts']);

/** Reads `--config FILE`, env and flags into a validated config. */
export function loadCoordinatorConfig(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): CoordinatorConfig {
  let fromFile: Record<string, unknown> = {};
  const file = flags.config;
  if (typeof file === 'string') {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`Cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      fromFile = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(
        `Config file ${file} is not valid JSON (${(err as Error).message}); fix it or drop --config.`,
        {
          cause: err,
        },
      );
    }
    if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) {
      throw new ConfigError(`Config file ${file} must hold a JSON object of settings.`);
    }
  }
  const fromEnv: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV)) {
    const value = env[name];
    if (!value) continue;
    fromEnv[key] = LIST_SETTINGS.has(key)
      ? value
          .split(',')
          .map((v) => v.trim())
          .filter(Boolean)
      : value;
  }
  const { config: _c, ...fromFlags } = flags;
  const merged = { ...fromFile, ...fromEnv, ...stripUndefined(fromFlags) };
  const parsed = coordinatorConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field =
      issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : 'config');
    throw new ConfigError(`Invalid configuration: ${field}: ${issue.message}.`);
  }
  const c = parsed.data;
  return { ...c, pkiDir: c.pkiDir ?? join(c.dataDir, 'pki'), blobDir: join(c.dataDir, 'blobs') };
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
