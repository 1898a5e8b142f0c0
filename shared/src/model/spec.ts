import { z } from 'zod';

/**
 * One parameter tensor of a model, in the order the flat weight vector lays it out.
 *
 * `shared` tensors are aggregated across sites; the others stay at the site (FedBN keeps
 * normalisation statistics local this way).
 */
export interface TensorSpec {
  /** Layer-scoped name, e.g. `encoder/kernel`. Unique within a spec. */
  name: string;
  /** Dimensions, outermost first; row-major in the flat vector. */
  shape: number[];
  /** True when the tensor is aggregated across sites. */
  shared: boolean;
}

/**
 * What a federation trains and how each site trains it locally. Its canonical hash goes into the
 * ledger, so every field that changes a site's result belongs here.
 */
export interface ModelSpec {
  /** One of {@link SUPPORTED_ARCHITECTURES}. */
  architecture: string;
  /** Side of the square, single-channel input image, in pixels. */
  inputSize: number;
  /** Parameter layout; the flat weight vector concatenates these in this order. */
  tensors: TensorSpec[];
  /** Self-supervised objective, e.g. `denoising-reconstruction`. */
  objective: string;
  /** Seed for initial weights, shuffling and noise (uint32). */
  seed: number;
  /** Passes over the local data per round. */
  localEpochs: number;
  /** Images per optimiser step. */
  batchSize: number;
  /** Optimiser step size. */
  learningRate: number;
  /** FedProx proximal weight mu; 0 is plain FedAvg. */
  fedproxMu: number;
}

/** The fields a caller may change on a built-in spec; the layout follows from the architecture. */
export type ModelSpecOverrides = Partial<
  Pick<ModelSpec, 'seed' | 'localEpochs' | 'batchSize' | 'learningRate' | 'fedproxMu'>
>;

const positiveInt = z.number().int().positive();

export const tensorSpecSchema = z.strictObject({
  name: z.string().min(1),
  shape: z.array(positiveInt).min(1),
  shared: z.boolean(),
}) satisfies z.ZodType<TensorSpec>;

/**
 * Validates a {@link ModelSpec} received from outside (config file, operator request). Unknown keys
 * are rejected rather than dropped, because the spec is hashed into the ledger as received.
 */
export const modelSpecSchema = z
  .strictObject({
    architecture: z.string().min(1),
    inputSize: positiveInt,
    tensors: z.array(tensorSpecSchema).min(1),
    objective: z.string().min(1),
    seed: z.number().int().min(0).max(0xffff_ffff),
    localEpochs: positiveInt,
    batchSize: positiveInt,
    learningRate: z.number().positive().finite(),
    fedproxMu: z.number().min(0).finite(),
  })
  .superRefine((spec, ctx) => {
    const seen = new Set<string>();
    spec.tensors.forEach((tensor, index) => {
      if (seen.has(tensor.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['tensors', index, 'name'],
          message: `tensor name "${tensor.name}" appears more than once`,
        });
      }
      seen.add(tensor.name);
    });
  }) satisfies z.ZodType<ModelSpec>;

interface ArchitectureDescriptor {
  /** Input side the architecture is named for and built at. */
  inputSize: number;
  objectives: readonly string[];
  /** Parameter layout (names and shapes, in order) the trainer builds for this architecture. */
  layout(inputSize: number): { name: string; shape: number[] }[];
}

const DENSE_AE_HIDDEN_UNITS = 64;

const ARCHITECTURES = {
  'dense-ae-32': {
    inputSize: 32,
    objectives: ['denoising-reconstruction'],
    layout(inputSize) {
      const pixels = inputSize * inputSize;
      return [
        { name: 'encoder/kernel', shape: [pixels, DENSE_AE_HIDDEN_UNITS] },
        { name: 'encoder/bias', shape: [DENSE_AE_HIDDEN_UNITS] },
        { name: 'decoder/kernel', shape: [DENSE_AE_HIDDEN_UNITS, pixels] },
        { name: 'decoder/bias', shape: [pixels] },
      ];
    },
  },
} as const satisfies Record<string, ArchitectureDescriptor>;

export type SupportedArchitecture = keyof typeof ARCHITECTURES;

/** Architectures this release can build and train. */
export const SUPPORTED_ARCHITECTURES = Object.keys(ARCHITECTURES) as readonly SupportedArchitecture[];

function isSupportedArchitecture(name: string): name is SupportedArchitecture {
  return Object.hasOwn(ARCHITECTURES, name);
}

/**
 * The spec of a built-in model, with its parameter layout derived from the architecture.
 *
 * `dense-ae-32`: a denoising autoencoder on 32x32 grayscale images (1024 -> 64 ReLU -> 1024 linear),
 * objective `denoising-reconstruction`, all tensors shared. Defaults: seed 42, localEpochs 1,
 * batchSize 16, learningRate 0.01, fedproxMu 0.
 *
 * @throws RangeError for an unknown name or overrides the schema rejects.
 */
export function builtinModelSpec(name = 'dense-ae-32', overrides: ModelSpecOverrides = {}): ModelSpec {
  if (!isSupportedArchitecture(name)) {
    throw new RangeError(
      `no built-in model named "${name}"; built-in models are: ${SUPPORTED_ARCHITECTURES.join(', ')}`,
    );
  }
  const architecture: ArchitectureDescriptor = ARCHITECTURES[name];
  const candidate: ModelSpec = {
    architecture: name,
    inputSize: architecture.inputSize,
    tensors: architecture.layout(architecture.inputSize).map((tensor) => ({ ...tensor, shared: true })),
    objective: architecture.objectives[0] ?? '',
    seed: 42,
    localEpochs: 1,
    batchSize: 16,
    learningRate: 0.01,
    fedproxMu: 0,
    ...overrides,
  };
  const parsed = modelSpecSchema.safeParse(candidate);
  if (!parsed.success) {
    throw new RangeError(`invalid overrides for "${name}": ${z.prettifyError(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

/** Number of scalar parameters in all tensors, i.e. the length of the flat weight vector. */
export function parameterCount(spec: ModelSpec): number {
  return spec.tensors.reduce((sum, tensor) => sum + elementCount(tensor.shape), 0);
}

/** Number of scalar parameters in shared tensors, i.e. what a site uploads each round. */
export function sharedParameterCount(spec: ModelSpec): number {
  return spec.tensors.reduce((sum, tensor) => sum + (tensor.shared ? elementCount(tensor.shape) : 0), 0);
}

/**
 * Says why a spec cannot be run by this release, as a sentence for the operator, or `undefined` when
 * it can: schema violations, an unknown architecture or objective, an input size the architecture is
 * not built for, a tensor layout that differs from what the architecture builds, or nothing shared.
 */
export function checkModelSpec(spec: ModelSpec): string | undefined {
  const parsed = modelSpecSchema.safeParse(spec);
  if (!parsed.success) {
    return `The model spec is malformed: ${z.prettifyError(parsed.error)}`;
  }
  if (!isSupportedArchitecture(spec.architecture)) {
    return `Architecture "${spec.architecture}" is not supported; supported architectures are: ${SUPPORTED_ARCHITECTURES.join(', ')}.`;
  }
  const architecture: ArchitectureDescriptor = ARCHITECTURES[spec.architecture];
  if (!architecture.objectives.includes(spec.objective)) {
    return `Architecture "${spec.architecture}" cannot train objective "${spec.objective}"; it supports: ${architecture.objectives.join(', ')}.`;
  }
  if (spec.inputSize !== architecture.inputSize) {
    return `Architecture "${spec.architecture}" takes ${architecture.inputSize}x${architecture.inputSize} images, but the spec says inputSize ${spec.inputSize}.`;
  }
  const expected = architecture.layout(spec.inputSize);
  if (spec.tensors.length !== expected.length) {
    return `Architecture "${spec.architecture}" builds ${expected.length} tensors (${expected.map((t) => t.name).join(', ')}), but the spec lists ${spec.tensors.length}.`;
  }
  for (const [index, want] of expected.entries()) {
    const got = spec.tensors[index];
    if (got === undefined) continue;
    if (got.name !== want.name || !sameShape(got.shape, want.shape)) {
      return `Tensor ${index} should be ${want.name} [${want.shape.join(', ')}] for architecture "${spec.architecture}", but the spec has ${got.name} [${got.shape.join(', ')}].`;
    }
  }
  if (!spec.tensors.some((tensor) => tensor.shared)) {
    return 'No tensor is shared, so the federation would have nothing to aggregate.';
  }
  return undefined;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((dim, index) => dim === b[index]);
}
