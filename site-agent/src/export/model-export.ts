/**
 * `radfed-agent model export`: the federation's model, decrypted with this site's key, written as
 * safetensors (torchvision names) or a tfjs LayersModel, with `config.json` and a model card the
 * site signs. The only place the model exists in plaintext is a site, so this runs at one.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { RpcError } from '@radfed/proto';
import {
  aggregateErrorBound,
  canonicalJson,
  hePreset,
  isHePresetName,
  type Logger,
  MODEL_CARD_FILE,
  type ModelCardFacts,
  planQuantisation,
  sha256Hex,
  sharedParameterCount,
  signedModelCard,
} from '@radfed/shared';
import type { SiteHe } from '@radfed/shared/he-site';
import * as tf from '@tensorflow/tfjs';
import { ModelExportError } from '../errors.js';
import type { HeKeyring } from '../he/keyring.js';
import { UpdateCodec } from '../he/update-codec.js';
import { listReceipts } from '../provenance/receipts.js';
import type { AgentIdentity } from '../state/agent-state.js';
import { CheckpointStore } from '../tasks/checkpoint.js';
import { withShared } from '../tasks/weights.js';
import { initialWeights } from '../training/index.js';
import type { ModelInfo } from '../transport/convert.js';
import type { SiteClient } from '../transport/site-client.js';
import {
  type DecryptedModel,
  highestDecryptedVersion,
  loadDecryptedModel,
  saveDecryptedModel,
} from './decrypted-models.js';
import { type FederationRecord, loadFederationRecord, taskFromRecord } from './federation-record.js';
import { modelCardProse } from './model-card.js';
import { encodeSafetensors } from './safetensors.js';
import { encoderLayersModel, saveLayersModel } from './tfjs-model.js';
import { torchStateDict } from './torch-names.js';

export type ExportFormat = 'safetensors' | 'tfjs';

export interface ModelExportOptions {
  stateDir: string;
  identity: AgentIdentity;
  /** A version number, or `latest` (the highest sealed version). */
  version: number | 'latest';
  format: ExportFormat;
  out: string;
  /** Reaches the coordinator; called only when the version is not held decrypted here. */
  connect: () => { client: SiteClient; cipher: SiteHe; keyring: HeKeyring; close(): Promise<void> };
  log: Logger;
}

export interface ModelExportResult {
  out: string;
  modelVersion: number;
  files: Record<string, string>;
  /** Whether the version was downloaded (false: a copy decrypted earlier was used). */
  downloaded: boolean;
}

/**
 * Exports one version. Checks the output folder first (absent or empty), writes everything into a
 * sibling temporary folder and renames it into place, so a failure leaves nothing half-written.
 *
 * @throws ModelExportError with the reason and what to do: no task run yet, no sealed round,
 *   an unknown version, an unreachable coordinator with no local copy, a non-empty output folder.
 */
export async function exportModel(o: ModelExportOptions): Promise<ModelExportResult> {
  const out = resolve(o.out);
  await checkOutput(out);
  const record = await loadFederationRecord(o.stateDir);
  if (record === undefined) {
    throw new ModelExportError(
      `This site has not taken part in a round of its federation yet (nothing in ${o.stateDir}), so there is no model to export; run the agent until a round is sealed.`,
    );
  }
  if (o.version !== 'latest' && o.version < 1) {
    throw new ModelExportError(
      'Version 0 is the seeded initialisation, not a trained model; give --version 1 or later, or latest.',
    );
  }
  const spec = record.spec;
  let connection: ReturnType<ModelExportOptions['connect']> | undefined;
  const connect = () => {
    connection ??= o.connect();
    return connection;
  };
  try {
    const { model, downloaded } = await resolveModel(o, record, connect);
    const checkpoint = await new CheckpointStore(join(o.stateDir, 'checkpoints')).latest();
    const localStats = checkpoint !== undefined && checkpoint.weights.length === initialWeights(spec).length;
    const local = localStats ? checkpoint.weights : initialWeights(spec);
    const weights = withShared(spec, local, model.shared);

    const tmp = join(dirname(out), `.${basename(out)}.partial-${process.pid}`);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    try {
      const files = await writeWeights(tmp, o.format, spec, weights);
      const config = configJson(record, o.format);
      await writeFile(join(tmp, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
      const digests: Record<string, string> = {};
      for (const name of [...files, 'config.json'].sort()) {
        digests[name] = sha256Hex(await readFile(join(tmp, name)));
      }
      const facts = await cardFacts(o, record, model, digests);
      const card = signedModelCard(
        frontMatter(facts),
        modelCardProse(facts, { localStats }),
        o.identity.signingKeyPem,
      );
      await writeFile(join(tmp, MODEL_CARD_FILE), card);
      await rm(out, { recursive: true, force: true });
      await rename(tmp, out);
      return { out, modelVersion: model.meta.modelVersion, files: digests, downloaded };
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  } finally {
    await connection?.close();
  }
}

async function checkOutput(out: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(out);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR')
      throw new ModelExportError(`${out} exists and is a file; choose a folder for --out.`);
    throw err;
  }
  if (entries.length > 0) {
    throw new ModelExportError(
      `The output folder ${out} exists and is not empty; choose a new folder or empty this one (nothing was written).`,
    );
  }
}

/** Finds the version (latest: probing upwards from what the site last saw) and its weights. */
async function resolveModel(
  o: ModelExportOptions,
  record: FederationRecord,
  connect: ModelExportOptions['connect'],
): Promise<{ model: DecryptedModel; downloaded: boolean }> {
  const fed = record.federationId;
  let version: number;
  let header: ModelInfo | undefined;
  if (o.version === 'latest') {
    const held = await highestDecryptedVersion(o.stateDir, fed);
    let candidate = Math.max(record.modelVersion + 1, held + 1);
    let latest = Math.max(record.modelVersion, held);
    try {
      const { client } = connect();
      for (;;) {
        const found = await client.modelHeader(fed, candidate);
        if (found === undefined) break;
        latest = candidate;
        header = found;
        candidate += 1;
      }
    } catch (err) {
      const kept = held > 0 ? await loadDecryptedModel(o.stateDir, fed, held) : undefined;
      if (kept === undefined) throw unreachable(o, err, candidate);
      o.log.warn(
        `cannot reach the coordinator (${describe(err)}); exporting v${held}, the latest version decrypted here, which may not be the federation's latest`,
      );
      return { model: kept, downloaded: false };
    }
    if (latest < 1) {
      throw new ModelExportError(
        `Federation ${fed} has no sealed round yet, so there is no trained model to export; wait for a round to be sealed.`,
      );
    }
    version = latest;
  } else {
    version = o.version;
  }
  const kept = await loadDecryptedModel(o.stateDir, fed, version);
  if (kept !== undefined) return { model: kept, downloaded: false };

  let connection: ReturnType<ModelExportOptions['connect']>;
  let downloaded: Awaited<ReturnType<SiteClient['downloadModel']>>;
  try {
    connection = connect();
    if (header === undefined) {
      header = await connection.client.modelHeader(fed, version);
      if (header === undefined) throw new ModelExportError(unknownVersion(fed, version));
    }
    downloaded = await connection.client.downloadModel(fed, version);
  } catch (err) {
    if (err instanceof ModelExportError) throw err;
    if (err instanceof RpcError && err.code === 5) throw new ModelExportError(unknownVersion(fed, version));
    throw unreachable(o, err, version);
  }
  if (downloaded.header.encoding === 'seed') {
    throw new ModelExportError(
      `Version ${version} of federation ${fed} is the seeded initialisation; no round produced it.`,
    );
  }
  const codec = new UpdateCodec({
    stateDir: o.stateDir,
    log: o.log,
    he: { cipher: connection.cipher, keyring: connection.keyring },
  });
  const enc = await codec.forTask(taskFromRecord(record));
  const shared = await codec.decodeGlobal(enc, downloaded, sharedParameterCount(record.spec));
  if (shared === undefined) throw new ModelExportError(`Version ${version} holds no weights.`);
  await saveDecryptedModel(o.stateDir, fed, downloaded.header, shared);
  const model = await loadDecryptedModel(o.stateDir, fed, version);
  return { model: model!, downloaded: true };
}

const unknownVersion = (fed: string, version: number) =>
  `Federation ${fed} has no model version ${version}; \`--version latest\` exports the newest sealed one.`;

function describe(err: unknown): string {
  return err instanceof RpcError
    ? `${err.codeName}: ${err.message}`
    : err instanceof Error
      ? err.message
      : String(err);
}

function unreachable(o: ModelExportOptions, err: unknown, version: number): ModelExportError {
  return new ModelExportError(
    `Cannot reach the coordinator at ${o.identity.coordinator} (${describe(err)}), and this site holds no decrypted copy of model v${version}; export needs the coordinator to download it. Check that it is running and reachable, then retry.`,
    { cause: err },
  );
}

async function writeWeights(
  dir: string,
  format: ExportFormat,
  spec: FederationRecord['spec'],
  weights: Float32Array,
) {
  if (format === 'safetensors') {
    await writeFile(
      join(dir, 'model.safetensors'),
      encodeSafetensors(torchStateDict(spec, weights), { format: 'pt', architecture: spec.architecture }),
    );
    return ['model.safetensors'];
  }
  const model = encoderLayersModel(spec, weights);
  try {
    await saveLayersModel(model, dir);
  } finally {
    model.dispose();
    tf.disposeVariables();
  }
  return ['model.json', 'weights.bin'];
}

/** What a downstream user needs to feed the encoder. */
function configJson(record: FederationRecord, format: ExportFormat): Record<string, unknown> {
  const { spec } = record;
  return {
    architecture: spec.architecture,
    format,
    input_size: spec.inputSize,
    in_chans: 1,
    num_features: spec.tensors.find((t) => t.name.endsWith('/kernel') && t.name.startsWith('encoder/'))
      ? featureWidth(spec)
      : 0,
    standardisation: spec.standardisation ?? 'per-image',
    standardisation_detail:
      (spec.standardisation ?? 'per-image') === 'per-image'
        ? 'each image to zero mean and unit variance'
        : "clip to the site's 0.5-99.5th intensity percentiles, then z-score with the site's mean and standard deviation",
    objective: spec.objective,
    batch_norm_epsilon: spec.architecture.startsWith('resnet') ? 1e-5 : 1e-3,
    padding: spec.architecture === 'conv4' ? 'tensorflow-same (stride 2: pad 0 before, 1 after)' : 'pytorch',
    layout: format === 'safetensors' ? 'NCHW, PyTorch names (torchvision for ResNets)' : 'NHWC',
  };
}

function featureWidth(spec: FederationRecord['spec']): number {
  const last = spec.tensors.filter((t) => t.name.startsWith('encoder/') && t.name.endsWith('/gamma')).at(-1);
  return last?.shape[0] ?? 0;
}

async function cardFacts(
  o: ModelExportOptions,
  record: FederationRecord,
  model: DecryptedModel,
  files: Record<string, string>,
): Promise<ModelCardFacts> {
  const { spec } = record;
  const name = record.hePreset.name;
  const preset = hePreset(isHePresetName(name) ? name : 'plaintext');
  const plan = planQuantisation(preset, {
    maxSites: record.maxSites || 100,
    maxSamplesPerSite: record.maxSamplesPerSite || 100_000,
    maxAbsWeight: record.maxAbsWeight || 8,
  });
  const siteMetrics: Record<string, Record<string, number>> = {};
  for (const receipt of await listReceipts(o.stateDir)) {
    if (receipt.federationId === record.federationId && receipt.modelVersion < model.meta.modelVersion) {
      siteMetrics[String(receipt.roundNumber)] = receipt.metrics;
    }
  }
  return {
    architecture: spec.architecture,
    objective: spec.objective,
    inputSize: spec.inputSize,
    inChannels: 1,
    standardisation: spec.standardisation ?? 'per-image',
    format: o.format,
    federationId: record.federationId,
    modelSpecHash: sha256Hex(canonicalJson(spec)),
    modelVersion: model.meta.modelVersion,
    rounds: model.meta.modelVersion,
    contributingSites: model.meta.siteCount,
    totalSamples: model.meta.totalSamples,
    aggregateDigest: model.meta.aggregateDigest,
    hePreset: preset.name,
    hePresetHash: record.hePreset.presetHash,
    quantisationErrorBound:
      preset.scheme === 'plaintext'
        ? 0
        : aggregateErrorBound(plan, model.meta.siteCount, model.meta.totalSamples),
    siteMetrics,
    exportingSite: { siteId: o.identity.siteId, siteName: o.identity.siteName },
    files,
  };
}

function frontMatter(facts: ModelCardFacts): Record<string, unknown> & { radfed: ModelCardFacts } {
  return {
    license: 'other',
    library_name: facts.format === 'safetensors' ? 'pytorch' : 'tfjs',
    pipeline_tag: 'image-feature-extraction',
    tags: [
      'radfed',
      'federated-learning',
      'self-supervised',
      'medical-imaging',
      facts.architecture,
      facts.objective,
    ],
    radfed: facts,
  };
}

/** Hex SHA-256 of a file (for tests and the CLI's summary). */
export async function fileDigest(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}
