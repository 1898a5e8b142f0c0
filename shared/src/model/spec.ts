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
  /**
   * How each site scales intensities before training. `per-image` (the default when absent): each
   * image to zero mean and unit variance. `per-site`: one robust scale per site and modality
   * (clipped to the site's 0.5-99.5th percentiles, then z-scored with the site's mean and standard
   * deviation), which keeps intensity differences between a site's images (e.g. CT densities).
   */
  standardisation?: Standardisation;
  /** Random views for the siamese objectives (and noise for the others); defaults when absent. */
  augmentation?: AugmentationSpec;
  /** Objective-specific settings; defaults when absent. */
  objectiveOptions?: ObjectiveOptions;
}

/** Intensity standardisation, see {@link ModelSpec.standardisation}. */
export type Standardisation = 'per-image' | 'per-site';

/**
 * Augmentations suited to grayscale radiology. Each view of an image is: a random crop of
 * `cropScaleMin`..1 of the area (aspect 3/4..4/3) resized back to the input size; a left-right
 * flip with probability 1/2 when `flipHorizontal` (off by default: laterality matters in many
 * studies); intensity jitter (contrast and brightness by up to +/-`intensity`, and a gamma of
 * exp(+/-`intensity`)); a Gaussian blur (sigma 0.1..1.5 px) with probability `blurProbability`;
 * additive Gaussian noise of standard deviation `noiseStd`.
 */
export interface AugmentationSpec {
  cropScaleMin: number;
  flipHorizontal: boolean;
  intensity: number;
  blurProbability: number;
  noiseStd: number;
}

/** Settings read by some objectives only; the others ignore them. */
export interface ObjectiveOptions {
  /** `simclr`: softmax temperature of the NT-Xent loss. Default 0.2. */
  temperature?: number;
  /** `masked-reconstruction`: fraction of patches masked. Default 0.5. */
  maskRatio?: number;
  /** `masked-reconstruction`: side of a masked square patch, in pixels. Default 8. */
  maskPatchSize?: number;
}

/** Augmentation used when a spec has none. */
export const DEFAULT_AUGMENTATION: Readonly<AugmentationSpec> = Object.freeze({
  cropScaleMin: 0.4,
  flipHorizontal: false,
  intensity: 0.3,
  blurProbability: 0.3,
  noiseStd: 0.05,
});

/** Objective options used where a spec leaves them out. */
export const DEFAULT_OBJECTIVE_OPTIONS: Readonly<Required<ObjectiveOptions>> = Object.freeze({
  temperature: 0.2,
  maskRatio: 0.5,
  maskPatchSize: 8,
});

/** The fields a caller may change on a built-in spec; the layout follows from the architecture. */
export type ModelSpecOverrides = Partial<
  Pick<
    ModelSpec,
    | 'seed'
    | 'localEpochs'
    | 'batchSize'
    | 'learningRate'
    | 'fedproxMu'
    | 'objective'
    | 'inputSize'
    | 'standardisation'
    | 'augmentation'
    | 'objectiveOptions'
  >
> & {
  /** Aggregate normalisation layers too (plain FedAvg) instead of keeping them local (FedBN). */
  shareNormalisation?: boolean;
};

const positiveInt = z.number().int().positive();

export const tensorSpecSchema = z.strictObject({
  name: z.string().min(1),
  shape: z.array(positiveInt).min(1),
  shared: z.boolean(),
}) satisfies z.ZodType<TensorSpec>;

const fraction = z.number().min(0).max(1);

export const augmentationSpecSchema = z.strictObject({
  cropScaleMin: z.number().gt(0).max(1),
  flipHorizontal: z.boolean(),
  intensity: fraction,
  blurProbability: fraction,
  noiseStd: z.number().min(0).max(2),
}) satisfies z.ZodType<AugmentationSpec>;

export const objectiveOptionsSchema = z.strictObject({
  temperature: z.number().gt(0).max(10).optional(),
  maskRatio: z.number().gt(0).lt(1).optional(),
  maskPatchSize: positiveInt.max(256).optional(),
}) satisfies z.ZodType<ObjectiveOptions>;

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
    standardisation: z.enum(['per-image', 'per-site']).optional(),
    augmentation: augmentationSpecSchema.optional(),
    objectiveOptions: objectiveOptionsSchema.optional(),
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

interface LayoutEntry {
  name: string;
  shape: number[];
  /** A normalisation layer's tensor: kept local under FedBN. */
  normalisation?: boolean;
}

interface ArchitectureDescriptor {
  /** Input side the built-in spec uses. */
  inputSize: number;
  /** Input sides the architecture can be built for: min..max in steps of `multiple`. */
  inputSizes: { min: number; max: number; multiple: number };
  /** Objectives it trains; the first is the built-in spec's. */
  objectives: readonly string[];
  /** Parameter layout (names and shapes, in order) the trainer builds. */
  layout(inputSize: number, objective: string): LayoutEntry[];
  /** Defaults of the built-in spec. */
  defaults: Pick<ModelSpec, 'batchSize' | 'learningRate'>;
}

const DENSE_AE_HIDDEN_UNITS = 64;

/** Output channels of the four conv blocks of `conv4`. */
export const CONV4_CHANNELS = [32, 64, 128, 256] as const;
/** `conv4` downsamples by 2 in each of its four blocks. */
export const CONV4_STRIDE = 16;
/** Hidden and output width of the `simclr` projection head. */
const PROJECTION_HIDDEN = 512;
const PROJECTION_OUT = 128;

function conv4Layout(_inputSize: number, objective: string): LayoutEntry[] {
  const layout: LayoutEntry[] = [];
  let inChannels = 1;
  for (const [index, channels] of CONV4_CHANNELS.entries()) {
    const block = index + 1;
    layout.push({ name: `encoder/conv${block}/kernel`, shape: [3, 3, inChannels, channels] });
    for (const part of ['gamma', 'beta', 'moving_mean', 'moving_variance']) {
      layout.push({ name: `encoder/bn${block}/${part}`, shape: [channels], normalisation: true });
    }
    inChannels = channels;
  }
  layout.push(...headLayout(objective, inChannels, CONV4_STRIDE));
  return layout;
}

/** Residual stages of the torchvision ResNets: blocks per stage and the block type. */
export const RESNET_STAGES = {
  resnet18: { blocks: [2, 2, 2, 2], bottleneck: false },
  resnet50: { blocks: [3, 4, 6, 3], bottleneck: true },
} as const;
/** Width of each stage's 3x3 convolutions (torchvision's `planes`). */
export const RESNET_WIDTHS = [64, 128, 256, 512] as const;
/** The ResNets downsample by 32: the stride-2 stem, the max-pool and three strided stages. */
export const RESNET_STRIDE = 32;

export type ResnetArchitecture = keyof typeof RESNET_STAGES;

function batchNormEntries(prefix: string, channels: number): LayoutEntry[] {
  return ['gamma', 'beta', 'moving_mean', 'moving_variance'].map((part) => ({
    name: `${prefix}/${part}`,
    shape: [channels],
    normalisation: true,
  }));
}

/**
 * The torchvision ResNet encoder as tensors named after torchvision's modules (`encoder/` then the
 * module path with `/` for `.`, e.g. `encoder/layer2.0/downsample.1/gamma` for
 * `layer2.0.downsample.1.weight`); kernels are HWIO as tfjs lays them out.
 */
function resnetLayout(architecture: ResnetArchitecture, objective: string): LayoutEntry[] {
  const { blocks, bottleneck } = RESNET_STAGES[architecture];
  const expansion = bottleneck ? 4 : 1;
  const layout: LayoutEntry[] = [{ name: 'encoder/conv1/kernel', shape: [7, 7, 1, 64] }];
  layout.push(...batchNormEntries('encoder/bn1', 64));
  let inChannels = 64;
  for (const [stage, count] of blocks.entries()) {
    const width = RESNET_WIDTHS[stage] ?? 64;
    const out = width * expansion;
    for (let block = 0; block < count; block++) {
      const prefix = `encoder/layer${stage + 1}.${block}`;
      const convs: [number, number, number][] = bottleneck
        ? [
            [1, inChannels, width],
            [3, width, width],
            [1, width, out],
          ]
        : [
            [3, inChannels, width],
            [3, width, width],
          ];
      for (const [k, [side, cin, cout]] of convs.entries()) {
        layout.push({ name: `${prefix}/conv${k + 1}/kernel`, shape: [side, side, cin, cout] });
        layout.push(...batchNormEntries(`${prefix}/bn${k + 1}`, cout));
      }
      const stride = block === 0 && stage > 0 ? 2 : 1;
      if (block === 0 && (stride !== 1 || inChannels !== out)) {
        layout.push({ name: `${prefix}/downsample.0/kernel`, shape: [1, 1, inChannels, out] });
        layout.push(...batchNormEntries(`${prefix}/downsample.1`, out));
      }
      inChannels = out;
    }
  }
  layout.push(...headLayout(objective, inChannels, RESNET_STRIDE));
  return layout;
}

/** The objective's head on `features` channels of a stride-`stride` feature map. */
function headLayout(objective: string, features: number, stride: number): LayoutEntry[] {
  if (objective === 'masked-reconstruction') {
    // SimMIM-style one-layer head: each cell of the feature map predicts its stride x stride pixels.
    const pixelsPerCell = stride * stride;
    return [
      { name: 'decoder/kernel', shape: [features, pixelsPerCell] },
      { name: 'decoder/bias', shape: [pixelsPerCell] },
    ];
  }
  return [
    { name: 'head/dense1/kernel', shape: [features, PROJECTION_HIDDEN] },
    { name: 'head/dense1/bias', shape: [PROJECTION_HIDDEN] },
    { name: 'head/dense2/kernel', shape: [PROJECTION_HIDDEN, PROJECTION_OUT] },
    { name: 'head/dense2/bias', shape: [PROJECTION_OUT] },
  ];
}

const ARCHITECTURES = {
  'dense-ae-32': {
    inputSize: 32,
    inputSizes: { min: 32, max: 32, multiple: 1 },
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
    defaults: { batchSize: 16, learningRate: 0.01 },
  },
  conv4: {
    inputSize: 64,
    inputSizes: { min: 16, max: 1024, multiple: CONV4_STRIDE },
    objectives: ['simclr', 'masked-reconstruction'],
    layout: conv4Layout,
    defaults: { batchSize: 32, learningRate: 0.001 },
  },
  resnet18: {
    inputSize: 64,
    inputSizes: { min: 32, max: 1024, multiple: RESNET_STRIDE },
    objectives: ['simclr', 'masked-reconstruction'],
    layout: (_inputSize, objective) => resnetLayout('resnet18', objective),
    defaults: { batchSize: 32, learningRate: 0.001 },
  },
  resnet50: {
    inputSize: 64,
    inputSizes: { min: 32, max: 1024, multiple: RESNET_STRIDE },
    objectives: ['simclr', 'masked-reconstruction'],
    layout: (_inputSize, objective) => resnetLayout('resnet50', objective),
    defaults: { batchSize: 32, learningRate: 0.001 },
  },
} as const satisfies Record<string, ArchitectureDescriptor>;

export type SupportedArchitecture = keyof typeof ARCHITECTURES;

/** Architectures this release can build and train. */
export const SUPPORTED_ARCHITECTURES = Object.keys(ARCHITECTURES) as readonly SupportedArchitecture[];

/**
 * The name `builtinModelSpec()` uses when given none: the reference encoder, whose WASM training
 * (about 75 SimCLR or 160 masked-reconstruction images/s per core) keeps an encrypted round short.
 */
export const DEFAULT_ARCHITECTURE: SupportedArchitecture = 'conv4';

function isSupportedArchitecture(name: string): name is SupportedArchitecture {
  return Object.hasOwn(ARCHITECTURES, name);
}

/**
 * The spec of a built-in model, with its parameter layout derived from the architecture.
 *
 * - `dense-ae-32`: a denoising autoencoder on 32x32 grayscale images (1024 -> 64 ReLU -> 1024
 *   linear), objective `denoising-reconstruction`, all tensors shared. Defaults: batchSize 16,
 *   learningRate 0.01.
 * - `conv4`: the reference encoder, four 3x3 stride-2 conv blocks (32, 64, 128, 256 channels, each
 *   conv -> batch norm -> ReLU) and global average pooling, on 64x64 by default (any multiple of 16
 *   from 16 to 1024). Objective `simclr` (projection head 256 -> 512 -> 128, NT-Xent; 585,568
 *   trainable parameters) or `masked-reconstruction` (SimMIM-style: masked patches, a linear head
 *   predicting each 16x16 cell's pixels, loss on masked pixels). Batch-norm tensors stay local
 *   (FedBN) unless `shareNormalisation`. Defaults: batchSize 32, learningRate 0.001, per-image
 *   standardisation, {@link DEFAULT_AUGMENTATION}, {@link DEFAULT_OBJECTIVE_OPTIONS}.
 * - `resnet18`, `resnet50`: torchvision's ResNet encoders (7x7 stride-2 stem with padding 3, 3x3
 *   stride-2 max-pool, four stages of BasicBlock / Bottleneck with the stride on the 3x3 conv,
 *   batch norm with epsilon 1e-5, global average pooling; 512 / 2048 features) with one input
 *   channel, on 64x64 by default (any multiple of 32 from 32 to 1024), tensors named after
 *   torchvision's modules so an export maps one to one. Same objectives, heads and defaults as
 *   `conv4` (the masked-reconstruction head predicts each 32x32 cell). Batch-norm tensors
 *   (weight, bias and running statistics) stay local (FedBN) unless `shareNormalisation`:
 *   11,170,240 / 23,501,760 trainable encoder parameters, of which 9,600 / 53,120 are batch-norm
 *   weights and biases, plus as many running statistics.
 *
 * Common defaults: seed 42, localEpochs 1, fedproxMu 0 (Adam optimiser in both).
 *
 * @throws RangeError for an unknown name or overrides the schema rejects.
 */
export function builtinModelSpec(
  name: string = DEFAULT_ARCHITECTURE,
  overrides: ModelSpecOverrides = {},
): ModelSpec {
  if (!isSupportedArchitecture(name)) {
    throw new RangeError(
      `no built-in model named "${name}"; built-in models are: ${SUPPORTED_ARCHITECTURES.join(', ')}`,
    );
  }
  const architecture: ArchitectureDescriptor = ARCHITECTURES[name];
  const { shareNormalisation = false, ...fields } = overrides;
  const objective = fields.objective ?? architecture.objectives[0] ?? '';
  const inputSize = fields.inputSize ?? architecture.inputSize;
  const isConv = name !== 'dense-ae-32';
  const candidate: ModelSpec = {
    architecture: name,
    inputSize,
    tensors: architecture.layout(inputSize, objective).map(({ name: tensorName, shape, normalisation }) => ({
      name: tensorName,
      shape,
      shared: shareNormalisation || normalisation !== true,
    })),
    objective,
    seed: 42,
    localEpochs: 1,
    ...architecture.defaults,
    fedproxMu: 0,
    ...(isConv
      ? {
          standardisation: 'per-image' as const,
          augmentation: { ...DEFAULT_AUGMENTATION },
          objectiveOptions: objectiveDefaults(objective),
        }
      : {}),
    ...fields,
  };
  const parsed = modelSpecSchema.safeParse(candidate);
  if (!parsed.success) {
    throw new RangeError(`invalid overrides for "${name}": ${z.prettifyError(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  const problem = checkModelSpec(parsed.data as ModelSpec);
  if (problem !== undefined) throw new RangeError(`invalid overrides for "${name}": ${problem}`);
  return parsed.data as ModelSpec;
}

function objectiveDefaults(objective: string): ObjectiveOptions {
  if (objective === 'simclr') return { temperature: DEFAULT_OBJECTIVE_OPTIONS.temperature };
  if (objective === 'masked-reconstruction') {
    return {
      maskRatio: DEFAULT_OBJECTIVE_OPTIONS.maskRatio,
      maskPatchSize: DEFAULT_OBJECTIVE_OPTIONS.maskPatchSize,
    };
  }
  return {};
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
  const sizes = architecture.inputSizes;
  if (spec.inputSize < sizes.min || spec.inputSize > sizes.max || spec.inputSize % sizes.multiple !== 0) {
    const accepted =
      sizes.min === sizes.max
        ? `${sizes.min}x${sizes.min} images`
        : `images from ${sizes.min}x${sizes.min} to ${sizes.max}x${sizes.max} in steps of ${sizes.multiple}`;
    return `Architecture "${spec.architecture}" takes ${accepted}, but the spec says inputSize ${spec.inputSize}.`;
  }
  const patch = spec.objectiveOptions?.maskPatchSize;
  if (patch !== undefined && spec.inputSize % patch !== 0) {
    return `objectiveOptions.maskPatchSize ${patch} does not divide inputSize ${spec.inputSize}.`;
  }
  const expected = architecture.layout(spec.inputSize, spec.objective);
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
