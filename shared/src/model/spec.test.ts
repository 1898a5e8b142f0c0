import { describe, expect, it } from 'vitest';
import {
  builtinModelSpec,
  checkModelSpec,
  DEFAULT_AUGMENTATION,
  DEFAULT_OBJECTIVE_OPTIONS,
  type ModelSpec,
  modelSpecSchema,
  parameterCount,
  SUPPORTED_ARCHITECTURES,
  sharedParameterCount,
} from './spec.js';

describe('builtinModelSpec', () => {
  it('defaults to the conv4 reference encoder with SimCLR', () => {
    expect(builtinModelSpec().architecture).toBe('conv4');
    expect(builtinModelSpec().objective).toBe('simclr');
  });

  it('describes dense-ae-32 with the documented layout and defaults', () => {
    const spec = builtinModelSpec('dense-ae-32');
    expect(spec).toEqual({
      architecture: 'dense-ae-32',
      inputSize: 32,
      tensors: [
        { name: 'encoder/kernel', shape: [1024, 64], shared: true },
        { name: 'encoder/bias', shape: [64], shared: true },
        { name: 'decoder/kernel', shape: [64, 1024], shared: true },
        { name: 'decoder/bias', shape: [1024], shared: true },
      ],
      objective: 'denoising-reconstruction',
      seed: 42,
      localEpochs: 1,
      batchSize: 16,
      learningRate: 0.01,
      fedproxMu: 0,
    });
    expect(checkModelSpec(spec)).toBeUndefined();
  });

  it('applies overrides and validates them', () => {
    const spec = builtinModelSpec('dense-ae-32', { seed: 7, fedproxMu: 0.01, localEpochs: 3 });
    expect(spec).toMatchObject({ seed: 7, fedproxMu: 0.01, localEpochs: 3, batchSize: 16 });
    expect(() => builtinModelSpec('dense-ae-32', { batchSize: 0 })).toThrow(/batchSize/);
  });

  it('rejects unknown names, listing the supported ones', () => {
    expect(() => builtinModelSpec('resnet-50')).toThrow(/dense-ae-32/);
  });

  it('returns a fresh object each call', () => {
    const a = builtinModelSpec('dense-ae-32');
    a.tensors[0]?.shape.push(1);
    expect(builtinModelSpec('dense-ae-32').tensors[0]?.shape).toEqual([1024, 64]);
  });
});

describe('parameter counts', () => {
  it('counts all and shared parameters', () => {
    const spec = builtinModelSpec('dense-ae-32');
    expect(parameterCount(spec)).toBe(1024 * 64 + 64 + 64 * 1024 + 1024);
    expect(sharedParameterCount(spec)).toBe(parameterCount(spec));

    const fedbn: ModelSpec = {
      ...spec,
      tensors: spec.tensors.map((t) => ({ ...t, shared: !t.name.endsWith('/bias') })),
    };
    expect(sharedParameterCount(fedbn)).toBe(2 * 1024 * 64);
  });
});

describe('modelSpecSchema', () => {
  const valid = builtinModelSpec('dense-ae-32');

  it.each([
    ['non-positive inputSize', { inputSize: 0 }],
    ['fractional batchSize', { batchSize: 1.5 }],
    ['empty tensors', { tensors: [] }],
    ['zero dimension', { tensors: [{ name: 'w', shape: [0], shared: true }] }],
    ['empty shape', { tensors: [{ name: 'w', shape: [], shared: true }] }],
    ['negative mu', { fedproxMu: -1 }],
    ['zero learning rate', { learningRate: 0 }],
    ['seed above uint32', { seed: 2 ** 32 }],
    ['unknown key', { dropout: 0.5 }],
    [
      'duplicate tensor names',
      {
        tensors: [
          { name: 'w', shape: [1], shared: true },
          { name: 'w', shape: [2], shared: true },
        ],
      },
    ],
  ])('rejects %s', (_label, patch) => {
    expect(modelSpecSchema.safeParse({ ...valid, ...patch }).success).toBe(false);
  });

  it('accepts the built-in spec', () => {
    expect(modelSpecSchema.parse(valid)).toEqual(valid);
  });
});

describe('checkModelSpec', () => {
  const valid = builtinModelSpec('dense-ae-32');

  it('lists supported architectures', () => {
    expect(SUPPORTED_ARCHITECTURES).toContain('dense-ae-32');
  });

  it('names an unknown architecture', () => {
    expect(checkModelSpec({ ...valid, architecture: 'vit-tiny' })).toMatch(/"vit-tiny" is not supported/);
  });

  it('names an unsupported objective', () => {
    expect(checkModelSpec({ ...valid, objective: 'simclr' })).toMatch(/cannot train objective "simclr"/);
  });

  it('names an input size the architecture is not built for', () => {
    expect(checkModelSpec({ ...valid, inputSize: 64 })).toMatch(/takes 32x32 images.*inputSize 64/);
  });

  it('names the first tensor that does not match the layout', () => {
    const tensors = valid.tensors.map((t) => ({ ...t }));
    tensors[2] = { name: 'decoder/kernel', shape: [32, 1024], shared: true };
    expect(checkModelSpec({ ...valid, tensors })).toMatch(/Tensor 2 should be decoder\/kernel \[64, 1024\]/);
    expect(checkModelSpec({ ...valid, tensors: valid.tensors.slice(0, 3) })).toMatch(/builds 4 tensors/);
  });

  it('refuses a spec with nothing shared', () => {
    const tensors = valid.tensors.map((t) => ({ ...t, shared: false }));
    expect(checkModelSpec({ ...valid, tensors })).toMatch(/nothing to aggregate/);
  });

  it('reports schema violations as a sentence', () => {
    expect(checkModelSpec({ ...valid, batchSize: -3 })).toMatch(/malformed.*batchSize/s);
  });
});

describe('conv4, the reference encoder', () => {
  const trainable = (spec: ModelSpec) =>
    spec.tensors
      .filter((t) => !t.name.includes('moving_'))
      .reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);

  it('has 585,568 trainable parameters under simclr, batch norm kept local (FedBN)', () => {
    const spec = builtinModelSpec('conv4');
    expect(spec).toMatchObject({
      architecture: 'conv4',
      inputSize: 64,
      objective: 'simclr',
      batchSize: 32,
      standardisation: 'per-image',
      augmentation: DEFAULT_AUGMENTATION,
      objectiveOptions: { temperature: DEFAULT_OBJECTIVE_OPTIONS.temperature },
    });
    expect(trainable(spec)).toBe(585_568);
    expect(spec.tensors.slice(0, 5).map((t) => [t.name, t.shape, t.shared])).toEqual([
      ['encoder/conv1/kernel', [3, 3, 1, 32], true],
      ['encoder/bn1/gamma', [32], false],
      ['encoder/bn1/beta', [32], false],
      ['encoder/bn1/moving_mean', [32], false],
      ['encoder/bn1/moving_variance', [32], false],
    ]);
    expect(spec.tensors.filter((t) => !t.shared).every((t) => t.name.includes('/bn'))).toBe(true);
    expect(sharedParameterCount(spec)).toBe(585_568 - 960);
    expect(checkModelSpec(spec)).toBeUndefined();
  });

  it('shares normalisation layers on request, and builds the masked-reconstruction head', () => {
    const fedavg = builtinModelSpec('conv4', { shareNormalisation: true });
    expect(fedavg.tensors.every((t) => t.shared)).toBe(true);
    const masked = builtinModelSpec('conv4', { objective: 'masked-reconstruction', inputSize: 32 });
    expect(masked.tensors.slice(-2)).toEqual([
      { name: 'decoder/kernel', shape: [256, 256], shared: true },
      { name: 'decoder/bias', shape: [256], shared: true },
    ]);
    expect(masked.objectiveOptions).toEqual({ maskRatio: 0.5, maskPatchSize: 8 });
  });

  it('refuses input sizes, options and layouts the architecture cannot build', () => {
    const spec = builtinModelSpec('conv4');
    expect(checkModelSpec({ ...spec, inputSize: 72 })).toMatch(/from 16x16 to 1024x1024 in steps of 16/);
    expect(checkModelSpec({ ...spec, objective: 'masked-reconstruction' })).toMatch(
      /builds 22 tensors .*but the spec lists 24/,
    );
    expect(checkModelSpec({ ...spec, objectiveOptions: { maskPatchSize: 12 } })).toMatch(
      /maskPatchSize 12 does not divide inputSize 64/,
    );
    expect(() => builtinModelSpec('conv4', { objective: 'denoising-reconstruction' })).toThrow(
      /cannot train objective/,
    );
    expect(
      modelSpecSchema.safeParse({ ...spec, augmentation: { ...DEFAULT_AUGMENTATION, cropScaleMin: 0 } })
        .success,
    ).toBe(false);
    expect(modelSpecSchema.safeParse({ ...spec, standardisation: 'per-volume' }).success).toBe(false);
  });
});

describe('resnet18 and resnet50', () => {
  it('lay out torchvision ResNets with one input channel and local batch norm (FedBN)', () => {
    const spec = builtinModelSpec('resnet18');
    expect(spec.inputSize).toBe(64);
    expect(spec.tensors[0]).toEqual({ name: 'encoder/conv1/kernel', shape: [7, 7, 1, 64], shared: true });
    expect(spec.tensors.find((t) => t.name === 'encoder/layer2.0/downsample.0/kernel')?.shape).toEqual([
      1, 1, 64, 128,
    ]);
    const encoder = spec.tensors.filter((t) => t.name.startsWith('encoder/'));
    const count = (tensors: typeof encoder) =>
      tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    // torchvision's resnet18 without fc (11,176,512) with a 1-channel stem, plus running statistics.
    expect(count(encoder.filter((t) => !t.name.includes('/moving_')))).toBe(11_176_512 - 6272);
    expect(encoder.filter((t) => !t.shared).every((t) => /\/(bn\d|downsample\.1)\//.test(t.name))).toBe(true);
    expect(count(encoder.filter((t) => !t.shared))).toBe(2 * 9600);
    const r50 = builtinModelSpec('resnet50').tensors.filter(
      (t) => t.name.startsWith('encoder/') && !t.name.includes('/moving_'),
    );
    expect(count(r50)).toBe(23_508_032 - 6272);
  });

  it('take inputs that are multiples of 32 and both objectives', () => {
    expect(checkModelSpec(builtinModelSpec('resnet18', { inputSize: 32 }))).toBeUndefined();
    const mim = builtinModelSpec('resnet18', { objective: 'masked-reconstruction', inputSize: 96 });
    expect(mim.tensors.at(-2)).toEqual({ name: 'decoder/kernel', shape: [512, 1024], shared: true });
    expect(() => builtinModelSpec('resnet18', { inputSize: 48 })).toThrow(/steps of 32/);
    expect(() => builtinModelSpec('resnet50', { objective: 'denoising-reconstruction' })).toThrow(/simclr/);
  });
});
