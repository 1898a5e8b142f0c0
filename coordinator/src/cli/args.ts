/**
 * `radfed`'s command line: which commands exist, which options each takes, and the parse that
 * accepts global options (`--coordinator`, `--pki-dir`, `--json`) anywhere, before or after the
 * command.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from '../errors.js';

/** Every option any `radfed` command takes (the `audit` commands' included), by name. */
const OPTIONS = {
  coordinator: { type: 'string' },
  'pki-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'min-sites': { type: 'string' },
  deadline: { type: 'string' },
  'max-samples': { type: 'string' },
  model: { type: 'string' },
  objective: { type: 'string' },
  epochs: { type: 'string' },
  'learning-rate': { type: 'string' },
  'batch-size': { type: 'string' },
  'he-preset': { type: 'string' },
  'max-sites': { type: 'string' },
  'max-abs-weight': { type: 'string' },
  ttl: { type: 'string' },
  count: { type: 'string' },
  reason: { type: 'string' },
  'exit-when-idle': { type: 'boolean' },
  out: { type: 'string' },
  format: { type: 'string' },
  'coordinator-key': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

type OptionName = keyof typeof OPTIONS;

/** Options every command takes. */
const GLOBAL: readonly OptionName[] = ['coordinator', 'pki-dir', 'json', 'help'];

/** Each operator command (`GROUP VERB`) and the options it takes besides the global ones. */
export const COMMANDS = {
  'federations create': [
    'min-sites',
    'deadline',
    'max-samples',
    'model',
    'objective',
    'epochs',
    'learning-rate',
    'batch-size',
    'he-preset',
    'max-sites',
    'max-abs-weight',
  ],
  'federations list': [],
  'sites invite': ['ttl'],
  'sites list': [],
  'sites revoke': ['reason'],
  'sites custodian': [],
  'rounds schedule': ['count'],
  'rounds list': [],
  'rounds watch': ['exit-when-idle'],
  'rounds cancel': ['reason'],
} as const satisfies Record<string, readonly OptionName[]>;

export type Command = keyof typeof COMMANDS;

/** Options the `audit` commands take besides the global ones (`audit.ts` parses them). */
const AUDIT_OPTIONS: readonly OptionName[] = ['out', 'format', 'coordinator-key'];

export type Values = { [K in OptionName]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** A parsed command line. */
export type ParsedArgs =
  | { kind: 'help'; values: Values }
  | { kind: 'audit' /** The arguments for `auditMain`: all but the word `audit`. */; argv: string[] }
  | { kind: 'simulate' /** The arguments for `simulateMain`: all but the word `simulate`. */; argv: string[] }
  | {
      kind: 'operator';
      command: Command;
      values: Values /** Positionals after GROUP VERB. */;
      args: string[];
    };

/**
 * Parses `radfed`'s arguments: options may come before, between or after the command words.
 *
 * @throws UsageError for an unknown command, an unknown option, or an option the command does not take.
 */
export function parseRadfedArgs(argv: string[]): ParsedArgs {
  // `simulate` parses its own options (see coordinator/simulate/main.ts): hand it all but its word.
  const word = parseArgs({
    args: argv,
    options: OPTIONS,
    allowPositionals: true,
    tokens: true,
    strict: false,
  }).tokens.find((t) => t.kind === 'positional');
  if (word?.value === 'simulate') return { kind: 'simulate', argv: argv.filter((_, i) => i !== word.index) };
  let parsed: ReturnType<
    typeof parseArgs<{ args: string[]; options: typeof OPTIONS; allowPositionals: true; tokens: true }>
  >;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, tokens: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message} See radfed --help.`, { cause: err });
  }
  const { values, positionals, tokens } = parsed;
  const first = tokens.find((t) => t.kind === 'positional');
  if (first?.value === 'audit') {
    // `audit` parses its own options; hand it everything but the command word, wherever that was.
    return { kind: 'audit', argv: argv.filter((_, i) => i !== first.index) };
  }
  if (first?.value === 'simulate')
    return { kind: 'simulate', argv: argv.filter((_, i) => i !== first.index) };
  if (values.help || positionals.length === 0) return { kind: 'help', values };
  const [group = '', verb = '', ...args] = positionals;
  const command = `${group} ${verb}`;
  if (!Object.hasOwn(COMMANDS, command)) {
    throw new UsageError(`Unknown command "${positionals.join(' ')}"; see radfed --help for the commands.`);
  }
  const allowed = new Set<string>([...GLOBAL, ...COMMANDS[command as Command]]);
  for (const t of tokens) {
    if (t.kind !== 'option' || allowed.has(t.name)) continue;
    const where = AUDIT_OPTIONS.includes(t.name as OptionName) ? ' (it belongs to the audit commands)' : '';
    throw new UsageError(`--${t.name} is not an option of "radfed ${command}"${where}; see radfed --help.`);
  }
  return { kind: 'operator', command: command as Command, values, args };
}

/**
 * The number in option `--name`, or undefined when it was not given.
 *
 * @throws UsageError when it is not a number, or not a whole number where `integer` is set.
 */
export function numberOption(name: string, value: string | undefined, integer = false): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${integer ? 'a whole number' : 'a number'}, got "${value}".`);
  }
  return n;
}
