/**
 * `radfed-agent`: the hospital site's agent.
 * Exit codes: 0 ok, 1 runtime failure or refusal by the coordinator, 2 bad usage.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { RpcError } from '@radfed/proto';
import { type CliFailure, createLogger, quietIpServerNameWarning, runCli } from '@radfed/shared';
import { SiteHe } from '@radfed/shared/he-site';
import { BACKEND_USAGE, backendCommand } from './backend/command.js';
import { loadAgentConfig } from './config/config.js';
import { type IngestReport, loadDataset } from './data/index.js';
import { AGENT_VERSION, enrol } from './enrol/enrol.js';
import { AgentConfigError, UsageError } from './errors.js';
import { modelCommand } from './export/export-command.js';
import { HeKeyring } from './he/keyring.js';
import { UpdateCodec } from './he/update-codec.js';
import { receiptsVerifyCommand } from './provenance/receipts-command.js';
import { loadIdentity } from './state/agent-state.js';
import { TaskRunner } from './tasks/run-task.js';
import { TaskLoop } from './tasks/task-loop.js';
import {
  backendCannotRun,
  defaultWorkers,
  progressReporter,
  selectBackend,
  TfjsTrainer,
} from './training/index.js';
import { SiteClient } from './transport/site-client.js';

quietIpServerNameWarning();

const USAGE = `Usage: radfed-agent <command> [options]

Commands:
  enrol --coordinator HOST:PORT --ca CA.crt --token TOKEN [--state-dir DIR]
        make this site's keys locally and enrol with a single-use token
  run --data DIR [--state-dir DIR]
        watch for tasks and train on the images in DIR (DICOM, NIfTI, PNG)
  data check DIR [--image-size N] [--list] [--json]
        report what would be trained on: counts, skipped files and why, dataset commitment;
        --list (always under --json) adds every file with its result: format, modality, size and
        slices taken, or why it was skipped. --image-size defaults to the default model's 64
  receipts verify --export FILE [--coordinator-key KEY] [--state-dir DIR] [--json]
        check, offline, that every receipt this site holds is in an audit export's ledger
        (\`radfed audit export\`) exactly as the site submitted it
  model export [--version N|latest] --format safetensors|tfjs --out DIR [--state-dir DIR]
        decrypt a sealed version of the model and write it with a signed model card
${BACKEND_USAGE}
Options (anywhere on the line):
  --state-dir DIR   keys and enrolment (RADFED_AGENT_STATE, default .radfed/agent)
  --log-level L     debug|info|warn|error (RADFED_LOG_LEVEL, default info)
  --json            machine-readable output; errors as one {"code","message"} object on stderr

Environment: RADFED_TRAIN_WORKERS (training threads on WASM, default one per core),
RADFED_TFJS_BACKEND (tfjs-node-gpu|native|tfjs-node|wasm|cpu, default the fastest that works),
RADFED_HE_THREADS (HE worker threads, default the cores available up to 8).
`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'backend') return backendCommand(argv.slice(1));
  if (argv[0] === 'model') return modelCommand(argv.slice(1));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      coordinator: { type: 'string' },
      ca: { type: 'string' },
      token: { type: 'string' },
      'state-dir': { type: 'string' },
      data: { type: 'string' },
      'image-size': { type: 'string' },
      'log-level': { type: 'string' },
      json: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      export: { type: 'string' },
      'coordinator-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  const config = loadAgentConfig({
    stateDir: values['state-dir'],
    logLevel: values['log-level'],
    imageSize: values['image-size'],
  });
  const { stateDir } = config;
  const command = positionals.slice(0, 2).join(' ');

  if (positionals[0] === 'enrol') {
    if (!values.coordinator || !values.ca || !values.token) {
      throw new UsageError(`enrol needs --coordinator, --ca and --token.\n\n${USAGE}`);
    }
    let caCertPem: string;
    try {
      caCertPem = readFileSync(values.ca, 'utf8');
    } catch {
      throw new UsageError(
        `Cannot read the federation CA certificate ${values.ca}; the operator gives you this file.`,
      );
    }
    const id = await enrol({ coordinator: values.coordinator, caCertPem, token: values.token, stateDir });
    process.stdout.write(
      `Enrolled as ${id.siteName} (${id.siteId}) in federation ${id.federationId}; keys kept in ${stateDir}.\n`,
    );
    return 0;
  }

  if (command === 'data check') {
    const dir = positionals[2];
    if (!dir) throw new UsageError('data check needs a folder.');
    const ds = await loadDataset(dir, { imageSize: config.imageSize });
    const r = ds.report;
    process.stdout.write(values.json ? `${JSON.stringify(r, null, 2)}\n` : renderDataCheck(r, values.list));
    return r.imagesAccepted > 0 ? 0 : 1;
  }

  if (command === 'receipts verify') {
    if (!values.export)
      throw new UsageError('receipts verify needs --export FILE (from `radfed audit export`).');
    return receiptsVerifyCommand({
      stateDir,
      exportPath: values.export,
      coordinatorKey: values['coordinator-key'],
      json: values.json,
    });
  }

  if (positionals[0] === 'run') {
    if (!values.data) throw new UsageError(`run needs --data DIR (the site's images).\n\n${USAGE}`);
    const id = await loadIdentity(stateDir);
    const log = createLogger({ level: config.logLevel, base: { site_id: id.siteId, site: id.siteName } });
    const backend = await selectBackend(config.tfjsBackend ? { only: config.tfjsBackend } : {});
    const workers = backend.id === 'wasm' ? (config.trainWorkers ?? defaultWorkers()) : 1;
    log.info(`training backend: ${backend.id}, ${backend.detail}; ${workers} training worker(s)`, {
      skipped: backend.skipped.map((s) => `${s.id}: ${s.reason}`).join('; '),
      why: backend.reason,
    });
    const client = new SiteClient(id.coordinator, {
      caCertPem: id.caCertPem,
      certPem: id.certPem,
      keyPem: id.tlsKeyPem,
    });
    // HE on worker threads (RADFED_HE_THREADS); the secret key stays in this process and state dir.
    const cipher = new SiteHe(config.heThreads);
    const keyring = new HeKeyring({
      client,
      he: cipher,
      stateDir,
      siteId: id.siteId,
      signingKeyPem: id.signingKeyPem,
      keyWrapKeyPem: id.keyWrapKeyPem,
      log,
    });
    const runner = new TaskRunner({
      client,
      trainer: new TfjsTrainer({ workers }),
      cannotRun: (spec) => backendCannotRun(spec, backend, workers),
      // A redrawn bar on a terminal; otherwise the per-epoch log lines are the progress record.
      ...(process.stderr.isTTY ? { onTrainProgress: progressReporter() } : {}),
      dataDir: values.data,
      stateDir,
      log,
      signingKeyPem: id.signingKeyPem,
      codec: new UpdateCodec({ stateDir, log, he: { cipher, keyring } }),
    });
    const loop = new TaskLoop({
      client,
      runner,
      log,
      agentVersion: AGENT_VERSION,
      backend: backend.name,
      keys: keyring,
    });
    const stop = () => {
      log.info('stopping');
      void loop.stop();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    try {
      await loop.run();
    } finally {
      client.close();
      await cipher.close();
    }
    return 0;
  }
  throw new UsageError(`Unknown command "${positionals.join(' ')}".\n\n${USAGE}`);
}

/** `data check`'s text report; with `list`, a line per file. */
function renderDataCheck(r: IngestReport, list: boolean): string {
  const size = (bytes: number | undefined) =>
    bytes === undefined
      ? ''
      : bytes < 2 ** 20
        ? `${(bytes / 1024).toFixed(1)} KiB`
        : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  const lines = [
    `${r.dir}: ${r.filesSeen} files, ${r.imagesAccepted} images accepted`,
    `by modality: ${JSON.stringify(r.byModality)}`,
    `by format: ${JSON.stringify(r.byFormat)}`,
  ];
  if (list) {
    lines.push(`files: ${r.files.length}`);
    for (const f of r.files) {
      lines.push(
        f.result === 'taken'
          ? `  ${f.path}: taken, ${f.format} ${f.modality}, ${size(f.bytes)}, ${f.slices} slice${f.slices === 1 ? '' : 's'}`
          : `  ${f.path}: skipped${f.bytes === undefined ? '' : ` (${size(f.bytes)})`}: ${f.reason}`,
      );
    }
  } else {
    lines.push(`skipped: ${r.skipped.length}`, ...r.skipped.map((s) => `  ${s.path}: ${s.reason}`));
  }
  lines.push(`labelled (labels.csv): ${r.labelled}`, `dataset commitment: ${r.commitment}`);
  return `${lines.join('\n')}\n`;
}

/** Exit 2 for bad usage or configuration, 1 for everything else (runtime failure, a refusal). */
function agentFailure(err: unknown): CliFailure {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof UsageError || isParseArgsError(err)) return { exitCode: 2, code: 'USAGE', message };
  if (err instanceof AgentConfigError) return { exitCode: 2, code: 'CONFIG', message };
  if (err instanceof RpcError)
    return { exitCode: 1, code: err.codeName, message: `${err.codeName}: ${message}` };
  return { exitCode: 1, code: 'ERROR', message };
}

function isParseArgsError(err: unknown): boolean {
  return err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS');
}

const argv = process.argv.slice(2);
await runCli(() => main(argv), { program: 'radfed-agent', argv, failure: agentFailure });
