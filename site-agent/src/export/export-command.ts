/**
 * `radfed-agent model export ...`: parses its own options and runs {@link exportModel}.
 * Exit codes: 0 written, 1 the export cannot be made (the message says why), 2 bad usage.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '@radfed/shared';
import { SiteHe } from '@radfed/shared/he-site';
import { ModelExportError } from '../errors.js';
import { HeKeyring } from '../he/keyring.js';
import { loadIdentity } from '../state/agent-state.js';
import { SiteClient } from '../transport/site-client.js';
import { exportModel } from './model-export.js';

export const MODEL_USAGE = `Usage: radfed-agent model export [--state-dir DIR] [--version N|latest] --format safetensors|tfjs --out DIR

  Decrypts a sealed version of the federation's model with this site's key (downloading it from the
  coordinator unless a decrypted copy is held here) and writes it to DIR (absent or empty) with
  config.json and a model card (README.md) signed by this site. safetensors: torchvision / PyTorch
  names and layouts; tfjs: a LayersModel directory for tf.loadLayersModel.
`;

class ModelUsageError extends Error {
  override name = 'ModelUsageError';
}

/** Runs `radfed-agent model ...`; returns the exit code. */
export async function modelCommand(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (err) {
    if (err instanceof ModelUsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`radfed-agent: ${(err as Error).message}\n`);
      return 2;
    }
    if (err instanceof ModelExportError) {
      process.stderr.write(`radfed-agent: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'state-dir': { type: 'string' },
      version: { type: 'string', default: 'latest' },
      format: { type: 'string' },
      out: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(MODEL_USAGE);
    return 0;
  }
  if (positionals[0] !== 'export')
    throw new ModelUsageError(`Unknown command "model ${positionals.join(' ')}".\n\n${MODEL_USAGE}`);
  const format = values.format;
  if (format !== 'safetensors' && format !== 'tfjs') {
    throw new ModelUsageError(`model export needs --format safetensors or --format tfjs.\n\n${MODEL_USAGE}`);
  }
  if (!values.out) throw new ModelUsageError(`model export needs --out DIR.\n\n${MODEL_USAGE}`);
  const version = values.version === 'latest' ? 'latest' : Number(values.version);
  if (version !== 'latest' && !Number.isInteger(version)) {
    throw new ModelUsageError(`--version must be a whole number or "latest", not "${values.version}".`);
  }
  const stateDir = values['state-dir'] ?? process.env.RADFED_AGENT_STATE ?? '.radfed/agent';
  const identity = await loadIdentity(stateDir);
  const log = createLogger({
    level: (values['log-level'] ?? 'warn') as 'warn',
    base: { site: identity.siteName },
  });
  const result = await exportModel({
    stateDir,
    identity,
    version,
    format,
    out: values.out,
    log,
    connect: () => {
      const client = new SiteClient(identity.coordinator, {
        caCertPem: identity.caCertPem,
        certPem: identity.certPem,
        keyPem: identity.tlsKeyPem,
      });
      const cipher = new SiteHe();
      const keyring = new HeKeyring({
        client,
        he: cipher,
        stateDir,
        siteId: identity.siteId,
        signingKeyPem: identity.signingKeyPem,
        keyWrapKeyPem: identity.keyWrapKeyPem,
        log,
      });
      return {
        client,
        cipher,
        keyring,
        close: async () => {
          client.close();
          await cipher.close();
        },
      };
    },
  });
  process.stdout.write(
    `Exported model v${result.modelVersion} (${format}${result.downloaded ? ', downloaded and decrypted' : ', from the copy decrypted here'}) to ${result.out}:\n${Object.entries(
      result.files,
    )
      .map(([name, digest]) => `  ${name}  sha256 ${digest}\n`)
      .join('')}  README.md  model card, signed by ${identity.siteName}\n`,
  );
  return 0;
}
