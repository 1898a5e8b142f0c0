import { join } from 'node:path';
import { checkModelSpec, type Logger, type ModelSpec, modelSpecSchema, parameterCount } from '@radfed/shared';
import { type Dataset, loadDataset } from '../data/index.js';
import { TaskDeclinedError } from '../errors.js';
import { saveDecryptedModel } from '../export/decrypted-models.js';
import { saveFederationRecord } from '../export/federation-record.js';
import { type TaskEncoding, UpdateCodec } from '../he/update-codec.js';
import { notePending, recoverReceipts, settlePending } from '../provenance/pending-receipts.js';
import { updateSigner } from '../provenance/receipts.js';
import {
  initialWeights,
  ResumeStore,
  reportedMetrics,
  type Trainer,
  TrainingInputError,
  TrainingWorkerError,
  type TrainProgress,
} from '../training/index.js';
import type { TrainingTask, UpdateReceipt } from '../transport/convert.js';
import type { SiteClient } from '../transport/site-client.js';
import { CheckpointStore } from './checkpoint.js';
import { sharedPart, withShared } from './weights.js';

/** The update encoding of plaintext federations (HE federations use `he-<preset>`). */
export const UPDATE_ENCODING = 'plain-f64-weighted';

export interface TaskRunnerOptions {
  client: SiteClient;
  trainer: Trainer;
  dataDir: string;
  stateDir: string;
  log: Logger;
  /** The site's Ed25519 signing key (PKCS#8 PEM, its enrolled signing.key): signs every upload. */
  signingKeyPem: string;
  /** Largest image file read, in bytes. */
  maxFileBytes?: number;
  /** Time one file may take to decode before its decoder is stopped and it is skipped (default 30 s). */
  decodeTimeoutMs?: number;
  /** Encodes updates and decodes models per preset (HE included); default: plaintext only. */
  codec?: UpdateCodec;
  /**
   * Why this agent's training backend cannot run a spec (e.g. its memory), or undefined when it
   * can; checked before any data is read, and a reason declines the round.
   */
  cannotRun?: (spec: ModelSpec) => string | undefined;
  /** Called for every training step, e.g. to draw a progress bar on a terminal. */
  onTrainProgress?: (progress: TrainProgress) => void;
}

export interface TaskOutcome {
  roundNumber: number;
  sampleCount: number;
  metrics: Record<string, number>;
  duplicate: boolean;
}

/**
 * Runs one training task end to end: validate the spec against what this agent can run, load
 * local images, fetch and decrypt/average the global model, train, checkpoint, upload. Anything
 * that makes the site unable to take part throws TaskDeclinedError with the reason for the operator.
 */
export class TaskRunner {
  private dataset: { size: number; standardisation: string; data: Dataset } | undefined;
  private readonly checkpoints: CheckpointStore;
  private readonly resumes: ResumeStore;
  private readonly codec: UpdateCodec;

  constructor(private readonly o: TaskRunnerOptions) {
    this.checkpoints = new CheckpointStore(join(o.stateDir, 'checkpoints'));
    this.resumes = new ResumeStore(join(o.stateDir, 'checkpoints'));
    this.codec = o.codec ?? new UpdateCodec({ stateDir: o.stateDir, log: o.log });
  }

  async run(task: TrainingTask): Promise<TaskOutcome> {
    const log = this.o.log.child({ round_id: task.roundId, federation_id: task.federationId });
    const spec = parseSpec(task);
    const unrunnable = this.o.cannotRun?.(spec);
    if (unrunnable) {
      throw new TaskDeclinedError(
        `this agent's training backend cannot run the round's model: ${unrunnable}`,
      );
    }
    const version = task.modelVersion;
    // What `model export` needs once the federation stops sending tasks.
    await saveFederationRecord(this.o.stateDir, task, spec);
    // Preset, quantisation and (for HE) the key first: a site without the key declines before training.
    const enc = await this.codec.forTask(task);

    const pending = await this.checkpoints.latest();
    if (pending && pending.roundId === task.roundId && pending.modelVersion === version) {
      // Trained before a crash or lost connection: send the same update again rather than retrain.
      log.info(`round ${task.roundNumber}: re-sending the update trained before the restart`);
      const commitment =
        pending.datasetCommitment ??
        (await this.loadData(spec.inputSize, log, spec.standardisation)).report.commitment;
      return this.upload(
        task,
        spec,
        enc,
        pending.weights,
        pending.sampleCount,
        pending.metrics,
        commitment,
        log,
      );
    }

    const dataset = await this.loadData(spec.inputSize, log, spec.standardisation);
    const cap = task.maxSamplesPerSite || dataset.images.length;
    const images = dataset.images.slice(0, cap);
    const labels = dataset.labels.slice(0, cap);

    const model = await this.o.client.downloadModel(task.federationId, version);
    const local =
      pending && pending.weights.length === parameterCount(spec) ? pending.weights : initialWeights(spec);
    const global = await this.codec.decodeGlobal(enc, model, sharedPart(spec, local).length);
    if (global) await saveDecryptedModel(this.o.stateDir, task.federationId, model.header, global);
    const start = global ? withShared(spec, local, global) : initialWeights(spec);
    log.info(`round ${task.roundNumber}: training model v${version} on ${images.length} images`);
    const resumeKey = `${task.roundId}@${version}`;
    const resume = await this.resumes.load(resumeKey);
    if (resume) log.info(`round ${task.roundNumber}: resuming local training after epoch ${resume.epoch}`);
    const onCheckpoint = (checkpoint: Parameters<ResumeStore['save']>[1]) =>
      this.resumes.save(resumeKey, checkpoint);
    let out: Awaited<ReturnType<Trainer['train']>>;
    try {
      out = await this.o.trainer.train(
        { spec, globalWeights: start, images, labels, resume, onCheckpoint },
        (p) => {
          this.o.onTrainProgress?.(p);
          if (p.batch === p.batches) {
            log.info(
              `round ${task.roundNumber}: epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)} (${p.imagesPerSecond.toFixed(0)} images/s)`,
            );
          }
        },
      );
    } catch (err) {
      if (err instanceof TrainingInputError || err instanceof TrainingWorkerError) {
        throw new TaskDeclinedError(`local training cannot run: ${err.message}`, { cause: err });
      }
      throw err;
    }
    const metrics = reportedMetrics(out.metrics);
    await this.checkpoints.save({
      roundId: task.roundId,
      modelVersion: version,
      weights: out.weights,
      sampleCount: out.sampleCount,
      metrics,
      datasetCommitment: dataset.report.commitment,
      uploaded: false,
    });
    await this.resumes.clear();
    return this.upload(
      task,
      spec,
      enc,
      out.weights,
      out.sampleCount,
      metrics,
      dataset.report.commitment,
      log,
    );
  }

  private async upload(
    task: TrainingTask,
    spec: ModelSpec,
    enc: TaskEncoding,
    weights: Float32Array,
    sampleCount: number,
    trainMetrics: Record<string, number>,
    datasetCommitment: string,
    log: Logger,
  ): Promise<TaskOutcome> {
    const update = await this.codec.encode(enc, task, sharedPart(spec, weights), sampleCount, trainMetrics);
    const metrics = update.metrics;
    const facts = {
      federationId: task.federationId,
      roundId: task.roundId,
      roundNumber: task.roundNumber,
      modelVersion: task.modelVersion,
      datasetCommitment,
      sampleCount,
      metrics,
    };
    // Noted first: if the answer is lost, the next connection fetches the receipt (GetReceipt).
    await notePending(this.o.stateDir, facts);
    const receipt = await this.o.client.upload({
      datasetCommitment,
      sign: updateSigner(this.o.signingKeyPem),
      roundId: task.roundId,
      modelVersion: task.modelVersion,
      data: update.data,
      sampleCount,
      metrics,
      encoding: update.encoding,
    });
    // Kept in the state directory, for `radfed-agent receipts verify`.
    await settlePending(this.o.stateDir, facts, receipt);
    log.info(`round ${task.roundNumber}: update accepted${receipt.duplicate ? ' (already held)' : ''}`, {
      samples: sampleCount,
      loss: metrics.loss,
    });
    return { roundNumber: task.roundNumber, sampleCount, metrics, duplicate: receipt.duplicate };
  }

  /**
   * Fetches the receipts of uploads whose answer never came (see {@link recoverReceipts}); the task
   * loop calls it on every connection, before any task runs.
   */
  recoverReceipts(): Promise<UpdateReceipt[]> {
    return recoverReceipts(this.o.stateDir, this.o.client, this.o.log);
  }

  private async loadData(
    size: number,
    log: Logger,
    standardisation: ModelSpec['standardisation'] = 'per-image',
  ): Promise<Dataset> {
    if (this.dataset?.size === size && this.dataset.standardisation === standardisation) {
      return this.dataset.data;
    }
    let data: Dataset;
    try {
      data = await loadDataset(this.o.dataDir, {
        imageSize: size,
        maxFileBytes: this.o.maxFileBytes,
        decodeTimeoutMs: this.o.decodeTimeoutMs,
        standardisation,
      });
    } catch (err) {
      throw new TaskDeclinedError(`cannot read the site's data folder: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const r = data.report;
    log.info(
      `loaded ${r.imagesAccepted} images from ${r.filesSeen} files in ${r.dir} (${r.skipped.length} skipped)`,
      {
        commitment: r.commitment,
      },
    );
    for (const s of r.skipped) log.warn(`skipped ${s.path}: ${s.reason}`);
    if (data.images.length === 0) {
      const why = r.skipped[0] ? ` (e.g. ${r.skipped[0].path}: ${r.skipped[0].reason})` : '';
      throw new TaskDeclinedError(
        `no usable images in the site's data folder: ${r.filesSeen} files seen${why}`,
      );
    }
    this.dataset = { size, standardisation, data };
    return data;
  }
}

/** The task's model spec, validated; a spec this agent cannot run declines the round. */
function parseSpec(task: TrainingTask): ModelSpec {
  const parsed = modelSpecSchema.safeParse(task.modelSpec);
  if (!parsed.success) {
    throw new TaskDeclinedError(
      `the round's model spec is malformed: ${parsed.error.issues[0]?.message ?? 'unknown problem'}`,
    );
  }
  const spec = parsed.data as ModelSpec;
  const problem = checkModelSpec(spec);
  if (problem) throw new TaskDeclinedError(`this agent cannot run the round's model: ${problem}`);
  return spec;
}
