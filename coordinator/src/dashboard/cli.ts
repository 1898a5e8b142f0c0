/**
 * `radfed dashboard` (live, operator's certificate) and `radfed audit dashboard EXPORT` (offline):
 * start the dashboard server, print its URL with the session token, serve until Ctrl-C.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseSigningPublicKey } from '@radfed/shared';
import { numberOption } from '../cli/args.js';
import { OperatorClient, tlsFromPkiDir } from '../cli/operator-client.js';
import { UsageError } from '../errors.js';
import { loadAuditSource } from './audit.js';
import { LiveSource } from './live.js';
import { startDashboardServer } from './server.js';
import type { DashboardSource } from './source.js';

export const DEFAULT_DASHBOARD_PORT = 7480;

export const DASHBOARD_USAGE = `Usage:
  radfed dashboard [--port P] [--coordinator HOST:PORT] [--pki-dir DIR]
        the operator's dashboard in a browser: federations, rounds live, per-site curves, sites, HE keys
  radfed audit dashboard EXPORT [--port P] [--coordinator-key KEY]
        the same pages offline over an audit export, with the ledger and each round's verification

Both listen on 127.0.0.1 only (default port ${DEFAULT_DASHBOARD_PORT}; --port 0 picks a free one) and print a URL
with a random session token; requests without it are refused.
`;

const OPTIONS = {
  port: { type: 'string' },
  coordinator: { type: 'string' },
  'pki-dir': { type: 'string' },
  'coordinator-key': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Options that take a value, in `radfed`'s whole option set. */
const STRING_OPTIONS = new Set([
  'port',
  'coordinator',
  'pki-dir',
  'coordinator-key',
  'out',
  'format',
  'reason',
]);

/**
 * The dashboard command in `argv`, or undefined when `argv` is another command. Only `dashboard`
 * and `audit dashboard` are claimed, wherever the options stand.
 */
export function dashboardCommand(
  argv: string[],
):
  | { mode: 'live' | 'audit'; file: string | undefined; values: Record<string, string | boolean | undefined> }
  | undefined {
  // The command words: what is neither an option nor the value of one ("--coordinator HOST").
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) words.push(a);
    else if (!a.includes('=') && a.startsWith('--') && STRING_OPTIONS.has(a.slice(2))) i++;
  }
  const live = words[0] === 'dashboard';
  const audit = words[0] === 'audit' && words[1] === 'dashboard';
  if (!live && !audit) return undefined;
  let parsed: ReturnType<
    typeof parseArgs<{ args: string[]; options: typeof OPTIONS; allowPositionals: true }>
  >;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${DASHBOARD_USAGE}`, { cause: err });
  }
  const p = parsed.positionals;
  if (p[0] === 'dashboard' && p.length === 1) return { mode: 'live', file: undefined, values: parsed.values };
  if (p[0] === 'audit' && p[1] === 'dashboard') {
    if (p.length !== 3)
      throw new UsageError(`radfed audit dashboard needs one EXPORT file.\n\n${DASHBOARD_USAGE}`);
    return { mode: 'audit', file: p[2], values: parsed.values };
  }
  if (p[0] === 'dashboard')
    throw new UsageError(`radfed dashboard takes no arguments.\n\n${DASHBOARD_USAGE}`);
  return undefined;
}

/** Runs the dashboard until SIGINT or SIGTERM; returns the exit code. */
export async function dashboardMain(cmd: NonNullable<ReturnType<typeof dashboardCommand>>): Promise<number> {
  const v = cmd.values;
  if (v.help) {
    process.stdout.write(DASHBOARD_USAGE);
    return 0;
  }
  const port = numberOption('port', v.port as string | undefined, true) ?? DEFAULT_DASHBOARD_PORT;
  if (port < 0 || port > 65_535) throw new UsageError(`--port must be between 0 and 65535, got ${port}.`);
  let source: DashboardSource;
  let what: string;
  if (cmd.mode === 'audit') {
    if (v.coordinator || v['pki-dir'])
      throw new UsageError('radfed audit dashboard works offline; it takes no --coordinator or --pki-dir.');
    const key = v['coordinator-key'] as string | undefined;
    source = await loadAuditSource(cmd.file!, key ? readKey(key) : undefined);
    what = `audit export ${cmd.file}`;
  } else {
    if (v['coordinator-key']) throw new UsageError('--coordinator-key belongs to radfed audit dashboard.');
    const address =
      (v.coordinator as string | undefined) ?? process.env.RADFED_COORDINATOR ?? '127.0.0.1:7443';
    const tls = tlsFromPkiDir(
      (v['pki-dir'] as string | undefined) ?? process.env.RADFED_PKI_DIR ?? '.radfed/coordinator/pki',
    );
    source = new LiveSource(new OperatorClient({ address, tls }), address);
    what = `coordinator ${address}`;
  }
  const server = await startDashboardServer({ source, port }).catch((err: unknown) => {
    source.close();
    throw err;
  });
  process.stdout.write(
    v.json
      ? `${JSON.stringify({ url: server.url, port: server.port })}\n`
      : `Dashboard for ${what}:\n  ${server.url}\nThe token in the URL is this session's key; keep it private. Ctrl-C stops the dashboard.\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}

/** The pinned ledger key, as `radfed audit verify` takes it: a PEM file, PEM text or base64 of the raw key. */
function readKey(arg: string): Uint8Array {
  let text = arg;
  if (!arg.includes('BEGIN') && !/^[A-Za-z0-9+/]{43}=$/.test(arg)) {
    try {
      text = readFileSync(arg, 'utf8');
    } catch {
      throw new UsageError(`--coordinator-key: cannot read ${arg}, and it is not a base64 key either.`);
    }
  }
  try {
    return parseSigningPublicKey(text);
  } catch (err) {
    throw new UsageError(`--coordinator-key is not an Ed25519 public key: ${(err as Error).message}`);
  }
}
