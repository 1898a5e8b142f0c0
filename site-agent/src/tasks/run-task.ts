import { join } from 'node:path';
import type { TrainTask } from '@radfed/proto';
import { checkModelSpec, type Logger, type ModelSpec, modelSpecSchema, parameterCount } from '@radfed/shared';
import { type Dataset, loadDataset } from '../data/index.js';
import { TaskDeclinedError } from '../errors.js';
import { initialWeights, type Trainer } from '../training/index.js';
import type { SiteClient } from '../transport/site-client.js';
import { CheckpointStore } from './checkpoint.js';
import { averageFromSum, sharedPart, weightedUpdate, withShared } from './weights.js';

/** The update encoding this agent produces (plaintext weighted FedAvg). */
export const UPDATE_ENCODING = 'plain-f64-weighted';

export interface TaskRunnerOptions {
  client: SiteClient;
  trainer: Trainer;
  dataDir: string;
  stateDir: string;
  log: Logger;
  /** Largest image file read, in bytes. */
  maxFileBytes?: number;
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
  private dataset: { size: number; data: Dataset } | undefined;
  private readonly checkpoints: CheckpointStore;

  constructor(private readonly o: TaskRunnerOptions) {
    this.checkpoints = new CheckpointStore(join(o.stateDir, 'checkpoints'));
  }

  async run(task: TrainTask): Promise<TaskOutcome> {
    const log = this.o.log.child({ round_id: task.roundId, federation_id: task.federationId });
    const spec = parseSpec(task);
    const version = Number(task.modelVersion);

    const pending = await this.checkpoints.latest();
    if (pending && pending.roundId === task.roundId && pending.modelVersion === version) {
      // Trained before a crash or lost connection: send the same update again rather than retrain.
      log.info(`round ${task.roundNumber}: re-sending the update trained before the restart`);
      return this.upload(task, spec, pending.weights, pending.sampleCount, pending.metrics, log);
    }

    const dataset = await this.loadData(spec.inputSize, log);
    const cap = task.maxSamplesPerSite || dataset.images.length;
    const images = dataset.images.slice(0, cap);

    const model = await this.o.client.downloadModel(task.federationId, version);
    const local =
      pending && pending.weights.length === parameterCount(spec) ? pending.weights : initialWeights(spec);
    let start: Float32Array;
    if (model.header.encoding === 'seed') {
      start = initialWeights(spec);
    } else if (model.header.encoding === UPDATE_ENCODING) {
      start = withShared(spec, local, averageFromSum(model.data, Number(model.header.totalSamples)));
    } else {
      throw new TaskDeclinedError(
        `the global model is encoded as "${model.header.encoding}", which this agent version cannot read; upgrade the agent`,
      );
    }
    log.info(`round ${task.roundNumber}: training model v${version} on ${images.length} images`);
    const out = await this.o.trainer.train({ spec, globalWeights: start, images }, (p) => {
      if (p.batch === p.batches) {
        log.info(
          `round ${task.roundNumber}: epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)} (${p.imagesPerSecond.toFixed(0)} images/s)`,
        );
      }
    });
    const metrics = {
      loss: out.metrics.loss,
      initial_loss: out.metrics.initialLoss,
      train_seconds: out.metrics.trainSeconds,
    };
    await this.checkpoints.save({
      roundId: task.roundId,
      modelVersion: version,
      weights: out.weights,
      sampleCount: out.sampleCount,
      metrics,
      uploaded: false,
    });
    return this.upload(task, spec, out.weights, out.sampleCount, metrics, log);
  }

  private async upload(
    task: TrainTask,
    spec: ModelSpec,
    weights: Float32Array,
    sampleCount: number,
    metrics: Record<string, number>,
    log: Logger,
  ): Promise<TaskOutcome> {
    const receipt = await this.o.client.upload({
      roundId: task.roundId,
      modelVersion: Number(task.modelVersion),
      data: weightedUpdate(sharedPart(spec, weights), sampleCount),
      sampleCount,
      metrics,
      encoding: UPDATE_ENCODING,
    });
    log.info(`round ${task.roundNumber}: update accepted${receipt.duplicate ? ' (already held)' : ''}`, {
      samples: sampleCount,
      loss: metrics.loss,
    });
    return { roundNumber: task.roundNumber, sampleCount, metrics, duplicate: receipt.duplicate };
  }

  private async loadData(size: number, log: Logger): Promise<Dataset> {
    if (this.dataset?.size === size) return this.dataset.data;
    let data: Dataset;
    try {
      data = await loadDataset(this.o.dataDir, { imageSize: size, maxFileBytes: this.o.maxFileBytes });
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
    this.dataset = { size, data };
    return data;
  }
}

/** The task's model spec, validated; a spec this agent cannot run declines the round. */
function parseSpec(task: TrainTask): ModelSpec {
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
