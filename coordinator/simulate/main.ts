/**
 * `radfed simulate`'s command line: parses and checks the options (a bad one is a UsageError, exit
 * 2, before anything starts), runs the simulation and prints a line per round, or one JSON report.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_HE_PRESET, isHePresetName, SUPPORTED_ARCHITECTURES } from '@radfed/shared';
import { UsageError } from '../src/errors.js';
import { type SimulateOptions, simulate } from './simulate.js';

export { type SimulateReport, simulate } from './simulate.js';

export const SIMULATE_USAGE = `Usage: radfed simulate --sites N [options]

Runs a federation in this process on the coordinator's real round engine, store, aggregator and
ledger, with N virtual sites (a light trainer returning seeded random updates, HE-encrypted at each
site on worker threads). Prints a line per round.

Options:
  --sites N            virtual sites (1..10000), required
  --rounds N           rounds to run (default 3)
  --seed N             seed for dropouts, updates and sample counts (default 1)
  --model NAME         ${SUPPORTED_ARCHITECTURES.join('|')} (default conv4)
  --he-preset NAME     bgv-8192|ckks-8192|plaintext (default ${DEFAULT_HE_PRESET})
  --min-sites N        quorum (default half the sites, rounded up)
  --deadline SECONDS   a site that takes longer in a round is a dropout (default 600)
  --dropout X          share of site-rounds that fail, chosen by the seed (0..1, default 0)
  --stragglers X       share of site-rounds that run past --deadline (0..1, default 0)
  --threads N          HE worker threads (default the cores available)
  --dir DIR            keep the store (PGlite folder, blobs, PKI) in DIR (default in memory, removed)
  --export FILE        write the federation's audit export to FILE (check with radfed audit verify)
  --json               one JSON report on stdout instead of progress lines
`;

const OPTIONS = {
  sites: { type: 'string' },
  rounds: { type: 'string' },
  seed: { type: 'string' },
  model: { type: 'string' },
  'he-preset': { type: 'string' },
  'min-sites': { type: 'string' },
  deadline: { type: 'string' },
  dropout: { type: 'string' },
  stragglers: { type: 'string' },
  threads: { type: 'string' },
  dir: { type: 'string' },
  export: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Parses `radfed simulate`'s arguments (all but the word `simulate`); `undefined` for --help. */
export function parseSimulateArgs(
  argv: string[],
): (Omit<SimulateOptions, 'say'> & { json: boolean }) | undefined {
  let values: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS }>>['values'];
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message} See radfed simulate --help.`, { cause: err });
  }
  if (values.help) return undefined;
  const int = (
    name: keyof typeof values,
    min: number,
    max: number,
    fallback?: number,
  ): number | undefined => {
    const raw = values[name] as string | undefined;
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
      throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${raw}".`);
    }
    return n;
  };
  if (values.sites === undefined) {
    throw new UsageError(
      'radfed simulate needs --sites N (how many virtual sites to run); see radfed simulate --help.',
    );
  }
  const sites = int('sites', 1, 10_000)!;
  const share = (name: 'dropout' | 'stragglers'): number => {
    const raw = values[name] ?? '0';
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
      throw new UsageError(`--${name} must be a share from 0 to 1, got "${raw}".`);
    }
    return n;
  };
  const dropout = share('dropout');
  const stragglers = share('stragglers');
  const preset = values['he-preset'] ?? DEFAULT_HE_PRESET;
  if (!isHePresetName(preset)) {
    throw new UsageError(`--he-preset must be bgv-8192, ckks-8192 or plaintext, got "${preset}".`);
  }
  if (values.model !== undefined && !(SUPPORTED_ARCHITECTURES as readonly string[]).includes(values.model)) {
    throw new UsageError(
      `--model must be one of ${SUPPORTED_ARCHITECTURES.join(', ')}, got "${values.model}".`,
    );
  }
  const minSites = int('min-sites', 1, sites);
  const threads = int('threads', 1, 256);
  return {
    sites,
    rounds: int('rounds', 1, 1000, 3)!,
    seed: int('seed', 0, 2 ** 31 - 1, 1)!,
    hePreset: preset,
    deadlineSeconds: int('deadline', 1, 7 * 24 * 3600, 600)!,
    dropout,
    stragglers,
    json: values.json ?? false,
    ...(values.model ? { model: values.model } : {}),
    ...(minSites !== undefined ? { minSites } : {}),
    ...(threads !== undefined ? { threads } : {}),
    ...(values.dir ? { dir: values.dir } : {}),
    ...(values.export ? { exportPath: values.export } : {}),
  };
}

/** `radfed simulate ARGS`: exit 0 when every round sealed, 1 when one failed, 2 for bad usage. */
export async function simulateMain(argv: string[]): Promise<number> {
  const parsed = parseSimulateArgs(argv);
  if (!parsed) {
    process.stdout.write(SIMULATE_USAGE);
    return 0;
  }
  const { json, ...options } = parsed;
  const report = await simulate({
    ...options,
    say: (line) => {
      if (!json) process.stdout.write(`${line}\n`);
    },
  });
  if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const sealed = report.rounds.filter((r) => r.state === 'sealed');
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
    process.stdout.write(
      `done: ${sealed.length}/${report.rounds.length} rounds sealed, ${mean(report.rounds.map((r) => r.seconds)).toFixed(1)} s per round, ` +
        `engine submit ${mean(report.rounds.map((r) => r.updatesPerSecond)).toFixed(1)} updates/s, peak RSS ${report.peakRssMiB.toFixed(0)} MiB (this process: engine, store and the virtual sites' HE workers)\n`,
    );
  }
  return report.rounds.every((r) => r.state === 'sealed') ? 0 : 1;
}
