/**
 * A task's or request's wire model spec as the plain object the domain's `modelSpecSchema`
 * validates. Empty and zero proto values mean "not set" and become absent keys, never defaults, so
 * the spec that is checked and hashed is the one the operator sent. The coordinator (CreateFederation)
 * and the agent (TrainTask) both read specs through this one function.
 */
import type { ModelSpec } from './gen/radfed/v1/common.js';

/** The fields every model spec has, wire or domain, copied into a fresh object (both directions). */
export type ModelSpecCore = Pick<
  ModelSpec,
  | 'architecture'
  | 'inputSize'
  | 'tensors'
  | 'objective'
  | 'seed'
  | 'localEpochs'
  | 'batchSize'
  | 'learningRate'
  | 'fedproxMu'
>;

export function modelSpecCoreFields(spec: ModelSpecCore): ModelSpecCore {
  return {
    architecture: spec.architecture,
    inputSize: spec.inputSize,
    tensors: spec.tensors.map((t) => ({ name: t.name, shape: [...t.shape], shared: t.shared })),
    objective: spec.objective,
    seed: spec.seed,
    localEpochs: spec.localEpochs,
    batchSize: spec.batchSize,
    learningRate: spec.learningRate,
    fedproxMu: spec.fedproxMu,
  };
}

export function modelSpecFromWire(spec: ModelSpec | undefined): Record<string, unknown> | undefined {
  if (!spec) return undefined;
  const options = spec.objectiveOptions;
  return {
    ...modelSpecCoreFields(spec),
    ...(spec.standardisation ? { standardisation: spec.standardisation } : {}),
    ...(spec.augmentation ? { augmentation: { ...spec.augmentation } } : {}),
    ...(options
      ? {
          objectiveOptions: {
            ...(options.temperature ? { temperature: options.temperature } : {}),
            ...(options.maskRatio ? { maskRatio: options.maskRatio } : {}),
            ...(options.maskPatchSize ? { maskPatchSize: options.maskPatchSize } : {}),
          },
        }
      : {}),
  };
}
