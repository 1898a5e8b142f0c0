import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { wantsJson } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'radfed-run-cli-'));
const MODULE = new URL('./run-cli.ts', import.meta.url).pathname;

/** Runs a program built on runCli with stdout through a shell pipe into a file; its exit status. */
function pipeThrough(body: string, args: string[], out: string, err: string): number {
  const script = `import { runCli } from ${JSON.stringify(MODULE)};
const argv = process.argv.slice(1);
await runCli(async () => { ${body} }, { program: 'prog', argv, failure: (e) => ({ exitCode: 3, code: 'BROKEN', message: e.message }) });`;
  const node = `"${process.execPath}" --import tsx --input-type=module -e '${script.replaceAll("'", "'\\''")}' --`;
  const rc = join(dir, `${out}.rc`);
  execFileSync('sh', [
    '-c',
    `{ ${node} ${args.join(' ')} 2>"${join(dir, err)}"; echo $? > "${rc}"; } | cat > "${join(dir, out)}"`,
  ]);
  return Number(readFileSync(rc, 'utf8'));
}

describe('runCli', () => {
  it('exits only once more than 1 MiB written to a pipe has reached the reader', () => {
    const code = pipeThrough(
      `const rows = Array.from({ length: 20000 }, (_, i) => ({ i, pad: 'x'.repeat(80) }));
       process.stdout.write(JSON.stringify(rows)); return 0;`,
      [],
      'big.json',
      'big.err',
    );
    const text = readFileSync(join(dir, 'big.json'), 'utf8');
    expect(code).toBe(0);
    expect(text.length).toBeGreaterThan(2 ** 20);
    expect(JSON.parse(text)).toHaveLength(20_000);
  });

  it('reports a failure as one JSON object under --json and keeps the exit status', () => {
    const code = pipeThrough(`throw new Error('it broke');`, ['--json'], 'fail.json', 'fail.err');
    expect(code).toBe(3);
    expect(JSON.parse(readFileSync(join(dir, 'fail.err'), 'utf8'))).toEqual({
      code: 'BROKEN',
      message: 'it broke',
    });
    expect(pipeThrough(`throw new Error('it broke');`, [], 'plain.json', 'plain.err')).toBe(3);
    expect(readFileSync(join(dir, 'plain.err'), 'utf8')).toBe('prog: it broke\n');
  });

  it('sees --json anywhere before --', () => {
    expect(wantsJson(['rounds', '--json', 'list'])).toBe(true);
    expect(wantsJson(['rounds', '--', '--json'])).toBe(false);
  });
});
