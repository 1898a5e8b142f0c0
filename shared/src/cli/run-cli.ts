/**
 * The one way RadFed's command-line programs end: every byte written to stdout and stderr reaches
 * its reader before the process exits, and a failure is reported once, as a sentence or (under
 * `--json`) as one JSON object.
 */

/** How a program reports one failure. */
export interface CliFailure {
  /** Process exit status, e.g. 1 for a refusal by the coordinator, 2 for bad usage. */
  exitCode: number;
  /** Stable identifier for scripts, e.g. a gRPC status name (`NOT_FOUND`) or `USAGE`. */
  code: string;
  /** What went wrong and what to do about it, for a person. */
  message: string;
}

export interface RunCliOptions {
  /** Program name that prefixes plain-text error messages, e.g. `radfed`. */
  program: string;
  /** The program's arguments; `--json` anywhere before `--` selects JSON error output. */
  argv: readonly string[];
  /** Maps anything `main` throws to the failure to report. */
  failure(thrown: unknown): CliFailure;
}

/**
 * Runs `main`, then exits with the status it returns, or reports what it threw and exits with that
 * failure's status. Errors go to stderr: `PROGRAM: message`, or under `--json` one line
 * `{"code":"...","message":"..."}`. A reader that closes the pipe early (`| head`) ends the program
 * quietly.
 */
export async function runCli(main: () => Promise<number>, options: RunCliOptions): Promise<never> {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    });
  }
  let code: number;
  try {
    code = await main();
  } catch (thrown) {
    const f = options.failure(thrown);
    process.stderr.write(
      wantsJson(options.argv)
        ? `${JSON.stringify({ code: f.code, message: f.message })}\n`
        : `${options.program}: ${f.message}\n`,
    );
    code = f.exitCode;
  }
  return exitWhenFlushed(code);
}

/**
 * Exits with `code` once stdout and stderr have handed everything written so far to the operating
 * system. `process.exit()` alone drops what is still queued for a pipe (a pipe's buffer holds 64 KiB
 * on Linux, and Node writes to pipes asynchronously), cutting piped output short.
 */
export async function exitWhenFlushed(code: number): Promise<never> {
  process.exitCode = code;
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

/** Resolves when everything written to `stream` before the call has been handed on (or cannot be). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.destroyed || stream.writableFinished) return Promise.resolve();
  // Writes complete in order, so the callback of an empty write runs after every earlier one.
  return new Promise((resolve) => stream.write('', () => resolve()));
}

/** Whether `--json` appears among the options (before a `--` that ends them). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}
