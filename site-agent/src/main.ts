/**
 * `radfed-agent`: the hospital site's agent.
 * Exit codes: 0 ok, 1 runtime failure or refusal by the coordinator, 2 bad usage.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { RpcError } from '@radfed/proto';
import { createLogger, quietIpServerNameWarning } from '@radfed/shared';
import { SiteHe } from '@radfed/shared/he-site';
import { loadDataset } from './data/index.js';
import { AGENT_VERSION, enrol } from './enrol/enrol.js';
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
  data check DIR [--image-size N] [--json]
        report what would be trained on: counts, skipped files and why, dataset commitment
  receipts verify --export FILE [--coordinator-key KEY] [--state-dir DIR] [--json]
        check, offline, that every receipt this site holds is in an audit export's ledger
        (\`radfed audit export\`) exactly as the site submitted it
  model export [--version N|latest] --format safetensors|tfjs --out DIR [--state-dir DIR]
        decrypt a sealed version of the model and write it with a signed model card

Options:
  --state-dir DIR   keys and enrolment (RADFED_AGENT_STATE, default .radfed/agent)
  --log-level L     debug|info|warn|error (default info)
`;

class UsageError extends Error {
  override name = 'UsageError';
}

async function main(argv: string[]): Promise<number> {
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
      export: { type: 'string' },
      'coordinator-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  const stateDir = values['state-dir'] ?? process.env.RADFED_AGENT_STATE ?? '.radfed/agent';
  const level = (values['log-level'] ?? 'info') as 'info';
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
    const ds = await loadDataset(dir, { imageSize: Number(values['image-size'] ?? 32) });
    const r = ds.report;
    if (values.json) {
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    } else {
      process.stdout.write(
        `${r.dir}: ${r.filesSeen} files, ${r.imagesAccepted} images accepted\n` +
          `by modality: ${JSON.stringify(r.byModality)}\nby format: ${JSON.stringify(r.byFormat)}\n` +
          `skipped: ${r.skipped.length}\n${r.skipped.map((s) => `  ${s.path}: ${s.reason}`).join('\n')}${r.skipped.length ? '\n' : ''}` +
          `labelled (labels.csv): ${r.labelled}\n` +
          `dataset commitment: ${r.commitment}\n`,
      );
    }
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
    const log = createLogger({ level, base: { site_id: id.siteId, site: id.siteName } });
    const backend = await selectBackend();
    const workers = backend.id === 'wasm' ? defaultWorkers() : 1;
    log.info(`training backend: ${backend.id}, ${backend.detail}; ${workers} training worker(s)`, {
      skipped: backend.skipped.map((s) => `${s.id}: ${s.reason}`).join('; '),
    });
    const client = new SiteClient(id.coordinator, {
      caCertPem: id.caCertPem,
      certPem: id.certPem,
      keyPem: id.tlsKeyPem,
    });
    // HE on worker threads (RADFED_HE_THREADS); the secret key stays in this process and state dir.
    const cipher = new SiteHe();
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (
      err instanceof UsageError ||
      (err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      process.stderr.write(`radfed-agent: ${(err as Error).message}\n`);
      process.exit(2);
    }
    const msg =
      err instanceof RpcError
        ? `${err.codeName}: ${err.message}`
        : err instanceof Error
          ? err.message
          : String(err);
    process.stderr.write(`radfed-agent: ${msg}\n`);
    process.exit(1);
  },
);
