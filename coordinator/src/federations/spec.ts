import {
  builtinModelSpec,
  checkModelSpec,
  DEFAULT_ARCHITECTURE,
  DEFAULT_HE_PRESET,
  HE_PRESET_NAMES,
  HeHeadroomError,
  type HePreset,
  hePreset,
  type ModelSpec,
  type ModelSpecOverrides,
  modelSpecSchema,
  planQuantisation,
  type QuantisationPlan,
  sharedParameterCount,
} from '@radfed/shared';
import { z } from 'zod';
import { InvalidSpecError } from '../errors.js';
import type { FederationRow } from '../store/queries/federations.js';

/** HE presets this build supports (see `HE_PRESETS` in @radfed/shared); the default encrypts. */
export { DEFAULT_HE_PRESET, HE_PRESET_NAMES };

/**
 * Defaults of a federation's settings, the one place they are set: the spec schema applies them to
 * a request that leaves a setting out, and {@link federationHe} to federations stored before a
 * setting existed. `maxSites` defaults to the larger of 100 and `minSites`.
 */
export const FEDERATION_DEFAULTS = {
  minSites: 2,
  roundDeadlineSeconds: 600,
  maxSamplesPerSite: 100_000,
  maxSites: 100,
  maxAbsWeight: 8,
} as const;

export const federationSpecSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(64)
      .regex(
        /^[a-zA-Z0-9][a-zA-Z0-9._-]*$/,
        'use letters, digits, ".", "_" and "-", starting with a letter or digit',
      ),
    modelSpec: modelSpecSchema,
    hePreset: z.enum(HE_PRESET_NAMES).default(DEFAULT_HE_PRESET),
    minSites: z.number().int().min(1).max(10_000).default(FEDERATION_DEFAULTS.minSites),
    roundDeadlineSeconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .default(FEDERATION_DEFAULTS.roundDeadlineSeconds),
    maxSamplesPerSite: z
      .number()
      .int()
      .min(1)
      .max(100_000_000)
      .default(FEDERATION_DEFAULTS.maxSamplesPerSite),
    // Bounds the HE sums: the most sites that may ever enrol, and the range weights are clipped to.
    maxSites: z.number().int().min(1).max(10_000).optional(),
    maxAbsWeight: z.number().positive().max(1_000_000).default(FEDERATION_DEFAULTS.maxAbsWeight),
  })
  .transform((spec) => ({
    ...spec,
    maxSites: spec.maxSites ?? Math.max(FEDERATION_DEFAULTS.maxSites, spec.minSites),
  }));

export type FederationSpec = z.output<typeof federationSpecSchema>;

/**
 * The objective `conv4` trains in a federation whose creator names none (`radfed federations
 * create`, `pnpm demo`): masked reconstruction, about twice SimCLR's images/s on WASM, whose loss
 * falls within a few short rounds.
 */
export const DEFAULT_CONV4_OBJECTIVE = 'masked-reconstruction';

/**
 * The model spec of a new federation: built-in `architecture` (default conv4, objective
 * {@link DEFAULT_CONV4_OBJECTIVE}) with `overrides` applied.
 *
 * @throws RangeError for an unknown architecture or overrides the schema rejects.
 */
export function newFederationModelSpec(
  architecture: string = DEFAULT_ARCHITECTURE,
  overrides: ModelSpecOverrides = {},
): ModelSpec {
  return builtinModelSpec(architecture, {
    ...(architecture === 'conv4' ? { objective: DEFAULT_CONV4_OBJECTIVE } : {}),
    ...overrides,
  });
}

/** Validates a federation spec, returning it or throwing InvalidSpecError naming the bad field. */
export function parseFederationSpec(input: unknown): FederationSpec & { parameterCount: number } {
  const parsed = federationSpecSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InvalidSpecError(
      `Invalid federation spec: ${issue.path.join('.') || 'spec'}: ${issue.message}.`,
    );
  }
  const problem = checkModelSpec(parsed.data.modelSpec as ModelSpec);
  if (problem) throw new InvalidSpecError(`Invalid federation spec: modelSpec: ${problem}`);
  const spec = parsed.data;
  if (spec.minSites > spec.maxSites) {
    throw new InvalidSpecError(
      `Invalid federation spec: minSites (${spec.minSites}) is above maxSites (${spec.maxSites}); a round could never reach quorum.`,
    );
  }
  try {
    planQuantisation(hePreset(spec.hePreset), spec);
  } catch (err) {
    if (err instanceof HeHeadroomError) {
      throw new InvalidSpecError(`Invalid federation spec: ${err.message}`, { cause: err });
    }
    throw err;
  }
  return { ...spec, parameterCount: sharedParameterCount(spec.modelSpec as ModelSpec) };
}

/**
 * The HE preset, limits and quantisation plan a stored federation runs under. Federations created
 * before these fields existed read as plaintext with the default limits.
 */
export function federationHe(row: FederationRow): {
  preset: HePreset;
  maxSites: number;
  maxAbsWeight: number;
  plan: QuantisationPlan;
} {
  const spec = row.spec as Partial<FederationSpec>;
  const preset = hePreset(spec.hePreset ?? 'plaintext');
  const maxSites = spec.maxSites ?? FEDERATION_DEFAULTS.maxSites;
  const maxAbsWeight = spec.maxAbsWeight ?? FEDERATION_DEFAULTS.maxAbsWeight;
  const plan = planQuantisation(preset, { maxSites, maxSamplesPerSite: row.maxSamplesPerSite, maxAbsWeight });
  return { preset, maxSites, maxAbsWeight, plan };
}
