/**
 * `radfed-agent backend install native [--wheel FILE] [--gpu] [--sha256 HEX]` and
 * `radfed-agent backend status [--json]`, both with `--backends-dir DIR` (`RADFED_BACKENDS_DIR`).
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadAgentConfig } from '../config/config.js';
import { BACKEND_CANDIDATES, type BackendId } from '../training/backend.js';
import { type CheckResult, checkBackend } from './check.js';
import { installNative } from './install.js';
import { backendsHome, describeNative, nativeDir, readNativeManifest } from './native-home.js';

export const BACKEND_USAGE = `  backend install native [--wheel FILE] [--gpu] [--sha256 HEX] [--backends-dir DIR]
        build native TensorFlow from the TensorFlow wheel on pip's index (or FILE), check it, install it
  backend status [--json] [--backends-dir DIR]
        what training backends are installed and what each measured on the known-answer step
`;

/** Runs a `backend ...` command; the exit code (2: bad usage). */
export async function backendCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      wheel: { type: 'string' },
      gpu: { type: 'boolean', default: false },
      sha256: { type: 'string' },
      'backends-dir': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const home = values['backends-dir'] !== undefined ? resolve(values['backends-dir']) : backendsHome();
  const command = positionals.join(' ');
  if (command === 'install native') {
    if (values.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(values.sha256)) {
      process.stderr.write("radfed-agent: --sha256 takes the wheel's sha256 as 64 hex digits.\n");
      return 2;
    }
    const manifest = await installNative({
      home,
      ...(values.wheel !== undefined ? { wheel: values.wheel } : {}),
      ...(values.sha256 !== undefined ? { sha256: values.sha256 } : {}),
      gpu: values.gpu,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(
      `Installed the native backend in ${nativeDir(home)}: ${describeNative(manifest)}; known-answer step ${manifest.knownAnswer.ms} ms.\n` +
        `The agent now trains on it${values['backends-dir'] !== undefined ? ` when RADFED_BACKENDS_DIR=${home}` : ''} (check: radfed-agent backend status).\n`,
    );
    return 0;
  }
  if (command === 'status') return status(home, values.json);
  process.stderr.write(`radfed-agent: unknown backend command "${command}".\n\nUsage:\n${BACKEND_USAGE}`);
  return 2;
}

interface StatusRow extends Partial<CheckResult> {
  id: BackendId;
  installed: boolean;
  where?: string;
}

async function status(home: string, json: boolean): Promise<number> {
  const require = createRequire(import.meta.url);
  const rows: StatusRow[] = [];
  for (const candidate of BACKEND_CANDIDATES) {
    let installed = true;
    let where: string | undefined;
    if (candidate.id === 'native') {
      const manifest = readNativeManifest(nativeDir(home));
      installed = manifest !== undefined;
      where = installed
        ? `${nativeDir(home)} (${manifest?.tensorflow.wheel}, sha256 ${manifest?.tensorflow.sha256.slice(0, 12)}..., built ${manifest?.builtAt})`
        : undefined;
    } else if (candidate.module !== undefined) {
      try {
        where = require.resolve(candidate.module);
      } catch {
        installed = false;
      }
    }
    const row: StatusRow = { id: candidate.id, installed, ...(where !== undefined ? { where } : {}) };
    rows.push(installed ? { ...row, ...(await checkBackend(candidate.id, home)), id: candidate.id } : row);
  }
  const forced = loadAgentConfig({}).tfjsBackend;
  const chosen = rows.find((r) => r.passed && (forced === undefined || r.id === forced));
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ backendsDir: home, backends: rows, trains: chosen?.id ?? null }, null, 2)}\n`,
    );
    return 0;
  }
  const ms = (value: number | undefined) => (value === undefined ? '-' : value.toFixed(0));
  process.stdout.write(`backends folder: ${home}\n`);
  process.stdout.write(
    `${'backend'.padEnd(15)}${'installed'.padEnd(11)}${'known-answer'.padEnd(14)}${'first ms'.padStart(9)}${'warm ms'.padStart(9)}  detail\n`,
  );
  for (const row of rows) {
    const result = !row.installed ? '-' : row.passed ? 'passed' : 'FAILED';
    const detail = !row.installed ? 'not installed' : row.passed ? (row.detail ?? '') : (row.reason ?? '');
    process.stdout.write(
      `${row.id.padEnd(15)}${(row.installed ? 'yes' : 'no').padEnd(11)}${result.padEnd(14)}${ms(row.firstMs).padStart(9)}${ms(row.warmMs).padStart(9)}  ${detail}\n`,
    );
    if (row.where !== undefined && row.id === 'native')
      process.stdout.write(`${''.padEnd(15)}${row.where}\n`);
  }
  process.stdout.write(
    chosen === undefined
      ? 'No backend passes its known-answer check: the agent cannot train here.\n'
      : `The agent trains on ${chosen.id}: ${forced ? 'RADFED_TFJS_BACKEND chooses it' : 'the first in this order to pass its known-answer check'}.\n`,
  );
  return chosen === undefined ? 1 : 0;
}
