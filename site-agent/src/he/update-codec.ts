/**
 * How the site turns its trained shared weights into upload bytes and a downloaded global model back
 * into weights, for the federation's HE preset: plaintext `n_i * w_i` as float64, or
 * `Enc(quantise(n_i * w_i))` under the federation's key (see @radfed/shared's quantisation notes).
 * Encrypted updates are cached per round, so a re-send after a crash is byte-identical (fresh
 * encryption would differ, and the coordinator takes one update per site and round).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type HePreset,
  hePreset,
  isEncrypted,
  isHePresetName,
  type Logger,
  planQuantisation,
  presetHash,
  type QuantisationPlan,
} from '@radfed/shared';
import type { HeKeyMaterial, SiteHe } from '@radfed/shared/he-site';
import { TaskDeclinedError } from '../errors.js';
import { atomicWrite } from '../state/agent-state.js';
import { averageFromSum, weightedUpdate } from '../tasks/weights.js';
import type { TrainingTask } from '../transport/convert.js';
import type { DownloadedModel } from '../transport/site-client.js';
import type { HeKeyring } from './keyring.js';

/** The update encoding of plaintext federations. */
export const PLAINTEXT_ENCODING = 'plain-f64-weighted';

/** What one task runs under: the preset, its quantisation plan and, for HE presets, the key. */
export interface TaskEncoding {
  preset: HePreset;
  plan: QuantisationPlan;
  /** The encoding this site uploads and expects the global model in. */
  encoding: string;
  key: HeKeyMaterial | undefined;
}

/** Upload bytes, the encoding they are in, and the metrics to report with them. */
export interface EncodedUpdate {
  data: Uint8Array;
  encoding: string;
  metrics: Record<string, number>;
}

export interface UpdateCodecOptions {
  stateDir: string;
  log: Logger;
  /** HE workers and the key; absent, the agent takes part in plaintext federations only. */
  he?: { cipher: SiteHe; keyring: HeKeyring };
}

/** Encodes updates and decodes global models for each task's preset. */
export class UpdateCodec {
  constructor(private readonly o: UpdateCodecOptions) {}

  /**
   * The task's preset, plan and key.
   * @throws TaskDeclinedError with a reason the operator can act on: an unknown preset, limits that
   *   do not fit it, or no copy of the federation's key yet.
   */
  async forTask(task: TrainingTask): Promise<TaskEncoding> {
    const name = task.hePreset.name;
    if (!isHePresetName(name)) {
      throw new TaskDeclinedError(
        `the federation uses HE preset "${name}", which this agent version does not know; upgrade the agent`,
      );
    }
    const preset = hePreset(name);
    const hash = task.hePreset.presetHash;
    if (hash && hash !== presetHash(preset)) {
      throw new TaskDeclinedError(
        `the federation's HE preset "${name}" has other parameters than this agent's; upgrade the agent`,
      );
    }
    let plan: QuantisationPlan;
    try {
      plan = planQuantisation(preset, {
        maxSites: task.maxSites || 100,
        maxSamplesPerSite: task.maxSamplesPerSite || 100_000,
        maxAbsWeight: task.maxAbsWeight || 8,
      });
    } catch (err) {
      throw new TaskDeclinedError(
        `the federation's limits do not fit its HE preset: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    if (!isEncrypted(preset)) return { preset, plan, encoding: PLAINTEXT_ENCODING, key: undefined };
    if (!this.o.he) {
      throw new TaskDeclinedError(
        'this agent was started without HE support, so it cannot join an encrypted round',
      );
    }
    const key = await this.o.he.keyring.keyFor(task.federationId, preset);
    return { preset, plan, encoding: `he-${preset.name}`, key };
  }

  /**
   * The global shared weights of a downloaded model, or undefined for the seeded version 0 (every
   * site builds it from the spec).
   * @throws TaskDeclinedError when the model is in an encoding this task cannot read.
   */
  async decodeGlobal(
    t: TaskEncoding,
    model: DownloadedModel,
    sharedCount: number,
  ): Promise<Float32Array | undefined> {
    const { encoding } = model.header;
    if (encoding === 'seed') return undefined;
    if (encoding !== t.encoding) {
      throw new TaskDeclinedError(
        `the global model is encoded as "${encoding}", but this federation's updates are "${t.encoding}"; upgrade the agent`,
      );
    }
    const totalSamples = model.header.totalSamples;
    if (!t.key) return averageFromSum(model.data, totalSamples);
    const avg = await this.o.he!.cipher.decryptAverage(
      t.preset,
      t.key,
      model.data,
      sharedCount,
      totalSamples,
      model.header.siteCount,
      t.plan,
    );
    this.o.log.info(
      `decrypted model v${model.header.modelVersion} (${model.header.siteCount} sites, ${totalSamples} samples; quantisation error at most ${avg.errorBound.toExponential(2)})`,
    );
    return Float32Array.from(avg.weights);
  }

  /** The upload for `shared` weights trained on `sampleCount` samples, in the task's encoding. */
  async encode(
    t: TaskEncoding,
    task: TrainingTask,
    shared: Float32Array,
    sampleCount: number,
    metrics: Record<string, number>,
  ): Promise<EncodedUpdate> {
    if (!t.key) return { data: weightedUpdate(shared, sampleCount), encoding: t.encoding, metrics };
    const dir = join(this.o.stateDir, 'checkpoints');
    const meta = join(dir, 'encrypted-update.json');
    const blob = join(dir, 'encrypted-update.bin');
    if (existsSync(meta) && existsSync(blob)) {
      const cached = JSON.parse(await readFile(meta, 'utf8')) as {
        roundId: string;
        keyId: string;
        clipped: number;
      };
      if (cached.roundId === task.roundId && cached.keyId === t.key.keyId) {
        return {
          data: await readFile(blob),
          encoding: t.encoding,
          metrics: withClipped(metrics, cached.clipped),
        };
      }
    }
    const out = await this.o.he!.cipher.encrypt(t.preset, t.key, shared, sampleCount, t.plan);
    if (out.clipped > 0) {
      this.o.log.warn(
        `${out.clipped} weights were outside ±${t.plan.maxAbsWeight} and were clipped before encryption; the operator may raise maxAbsWeight`,
      );
    }
    await mkdir(dir, { recursive: true });
    await atomicWrite(blob, out.bytes, 0o600);
    await atomicWrite(
      meta,
      JSON.stringify({ roundId: task.roundId, keyId: t.key.keyId, clipped: out.clipped }),
      0o600,
    );
    return { data: out.bytes, encoding: t.encoding, metrics: withClipped(metrics, out.clipped) };
  }
}

function withClipped(metrics: Record<string, number>, clipped: number): Record<string, number> {
  return clipped > 0 ? { ...metrics, he_clipped: clipped } : metrics;
}
