/**
 * The agent's translation of a task's proto model spec into the domain spec. Empty and zero proto
 * values mean "not set" and become absent keys (the coordinator's `modelSpecFromProto` does the
 * same), so the spec the agent checks is the one the operator created.
 */
import type { ModelSpec as ProtoModelSpec } from '@radfed/proto';

/** A plain object for `modelSpecSchema` to validate; `undefined` when the task carries no spec. */
export function modelSpecFromTask(spec: ProtoModelSpec | undefined): Record<string, unknown> | undefined {
  if (!spec) return undefined;
  const options = spec.objectiveOptions;
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
