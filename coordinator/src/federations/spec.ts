import { checkModelSpec, type ModelSpec, modelSpecSchema, sharedParameterCount } from '@radfed/shared';
import { z } from 'zod';
import { InvalidSpecError } from '../errors.js';

/** HE presets this build supports. The encrypted-aggregation work adds BFV/CKKS presets here. */
export const HE_PRESETS = ['plaintext'] as const;
export type HePresetName = (typeof HE_PRESETS)[number];

export const federationSpecSchema = z.object({
  name: z
    .string()
    .min(1)
    .max(64)
    .regex(
      /^[a-zA-Z0-9][a-zA-Z0-9._-]*$/,
      'use letters, digits, ".", "_" and "-", starting with a letter or digit',
    ),
  modelSpec: modelSpecSchema,
  hePreset: z.enum(HE_PRESETS).default('plaintext'),
  minSites: z.number().int().min(1).max(10_000),
  roundDeadlineSeconds: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 3600),
  maxSamplesPerSite: z.number().int().min(1).max(100_000_000),
});

export type FederationSpec = z.infer<typeof federationSpecSchema>;

/** Defaults applied when a request leaves a field at zero/empty. */
export const FEDERATION_DEFAULTS = {
  minSites: 2,
  roundDeadlineSeconds: 600,
  maxSamplesPerSite: 100_000,
} as const;

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
  return { ...parsed.data, parameterCount: sharedParameterCount(parsed.data.modelSpec as ModelSpec) };
}
