/**
 * What a site remembers of its federation for `model export`: the last task's model spec, HE
 * preset and limits. Nothing else tells a site these once the federation has stopped sending tasks.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ModelSpec, modelSpecSchema } from '@radfed/shared';
import { z } from 'zod';
import { atomicWrite } from '../state/agent-state.js';
import type { TrainingTask } from '../transport/convert.js';

const FILE = 'federation.json';

const recordSchema = z.object({
  federationId: z.string().min(1),
  roundNumber: z.number().int().min(0),
  /** The version the last task trained from. */
  modelVersion: z.number().int().min(0),
  spec: modelSpecSchema,
  hePreset: z.object({ name: z.string(), presetHash: z.string() }),
  maxSites: z.number(),
  maxSamplesPerSite: z.number(),
  maxAbsWeight: z.number(),
});

export type FederationRecord = Omit<z.infer<typeof recordSchema>, 'spec'> & { spec: ModelSpec };

/** Remembers `task` (called for every task the site runs). */
export async function saveFederationRecord(
  stateDir: string,
  task: TrainingTask,
  spec: ModelSpec,
): Promise<void> {
  const record: FederationRecord = {
    federationId: task.federationId,
    roundNumber: task.roundNumber,
    modelVersion: task.modelVersion,
    spec,
    hePreset: { name: task.hePreset.name, presetHash: task.hePreset.presetHash },
    maxSites: task.maxSites,
    maxSamplesPerSite: task.maxSamplesPerSite,
    maxAbsWeight: task.maxAbsWeight,
  };
  await atomicWrite(join(stateDir, FILE), JSON.stringify(record), 0o600);
}

/** The remembered federation, or undefined when this site has run no task. */
export async function loadFederationRecord(stateDir: string): Promise<FederationRecord | undefined> {
  let text: string;
  try {
    text = await readFile(join(stateDir, FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return recordSchema.parse(JSON.parse(text)) as FederationRecord;
}

/** The task fields the update codec reads, rebuilt from a record (no round is open at export). */
export function taskFromRecord(record: FederationRecord): TrainingTask {
  return {
    roundId: '',
    federationId: record.federationId,
    roundNumber: record.roundNumber,
    modelVersion: record.modelVersion,
    deadline: undefined,
    modelSpec: undefined,
    hePreset: { ...record.hePreset },
    maxSamplesPerSite: record.maxSamplesPerSite,
    maxSites: record.maxSites,
    maxAbsWeight: record.maxAbsWeight,
  };
}
