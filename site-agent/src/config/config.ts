/**
 * The agent's configuration, parsed once at start-up from environment variables and command-line
 * flags (flags win). A bad value stops the agent with an AgentConfigError naming the flag or
 * variable, before any key, image or connection is touched.
 */
import { builtinModelSpec, DEFAULT_ARCHITECTURE } from '@radfed/shared';
import { z } from 'zod';
import { AgentConfigError } from '../errors.js';
import { BACKEND_CANDIDATES, type BackendId } from '../training/index.js';

const positiveInteger = z.coerce.number().int().min(1);

export const agentConfigSchema = z
  .object({
    /** Keys, enrolment and receipts (`--state-dir`, `RADFED_AGENT_STATE`). */
    stateDir: z.string().min(1).default('.radfed/agent'),
    /** `--log-level`, `RADFED_LOG_LEVEL`. */
    logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    /**
     * Side of the square images `data check` decodes to (`--image-size`); default the default
     * model's input size (conv4: 64), so the check sees what training would. `run` always uses the
     * federation's model spec.
     */
    imageSize: positiveInteger.max(4096).default(builtinModelSpec(DEFAULT_ARCHITECTURE).inputSize),
    /** Training worker threads on the WASM backend (`RADFED_TRAIN_WORKERS`); default one per core. */
    trainWorkers: positiveInteger.max(1024).optional(),
    /** Use only this tfjs backend (`RADFED_TFJS_BACKEND`); default the fastest that passes its checks. */
    tfjsBackend: z.enum(BACKEND_CANDIDATES.map((c) => c.id) as [BackendId, ...BackendId[]]).optional(),
    /** HE worker threads (`RADFED_HE_THREADS`); default the cores available, at most 8. */
    heThreads: positiveInteger.max(1024).optional(),
  })
  .strict();

export type AgentConfig = z.output<typeof agentConfigSchema>;

/** Where each setting comes from, as a person would write it: the flag, then the variable. */
const SOURCES: Record<keyof z.input<typeof agentConfigSchema>, { flag?: string; env?: string }> = {
  stateDir: { flag: '--state-dir', env: 'RADFED_AGENT_STATE' },
  logLevel: { flag: '--log-level', env: 'RADFED_LOG_LEVEL' },
  imageSize: { flag: '--image-size' },
  trainWorkers: { env: 'RADFED_TRAIN_WORKERS' },
  tfjsBackend: { env: 'RADFED_TFJS_BACKEND' },
  heThreads: { env: 'RADFED_HE_THREADS' },
};

/**
 * Reads the agent's settings from `flags` (by setting name, undefined when not given) and `env`.
 *
 * @throws AgentConfigError naming the flag or variable whose value is unusable.
 */
export function loadAgentConfig(
  flags: Partial<Record<keyof typeof SOURCES, string | undefined>>,
  env: NodeJS.ProcessEnv = process.env,
): AgentConfig {
  const merged: Record<string, string> = {};
  const origin: Record<string, string> = {};
  for (const [key, source] of Object.entries(SOURCES)) {
    const fromFlag = flags[key as keyof typeof SOURCES];
    const fromEnv = source.env ? env[source.env] : undefined;
    if (fromFlag !== undefined) {
      merged[key] = fromFlag;
      origin[key] = source.flag ?? key;
    } else if (fromEnv !== undefined && fromEnv !== '') {
      merged[key] = fromEnv;
      origin[key] = source.env ?? key;
    }
  }
  const parsed = agentConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    const value = merged[key];
    throw new AgentConfigError(
      `Invalid configuration: ${origin[key] ?? key}${value !== undefined ? ` is "${value}"` : ''}: ${issue.message}.`,
      { cause: parsed.error },
    );
  }
  return parsed.data;
}
