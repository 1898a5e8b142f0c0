/**
 * `radfed simulate` on the real round engine, PGlite store, HE aggregator and ledger: its rounds
 * seal with dropouts (failures and deadline stragglers), its audit export verifies offline, it is
 * deterministic for a seed, and bad input is refused with exit 2 before anything starts.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseSimulateArgs, simulate } from '@radfed/coordinator/simulate';
import { verifyAuditExport } from '@radfed/coordinator/testing';
import { afterAll, describe, expect, it } from 'vitest';

const repo = join(import.meta.dirname, '../..');
const RADFED = join(repo, 'coordinator/bin/radfed.mjs');
const dir = mkdtempSync(join(tmpdir(), 'radfed-simulate-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = { rounds: 2, seed: 7, deadlineSeconds: 1, dropout: 0, say: () => undefined };

describe('radfed simulate', () => {
  it('seals encrypted rounds with dropouts, and its audit export verifies', async () => {
    const exportPath = join(dir, 'he.ndjson');
    const report = await simulate({
      ...base,
      sites: 5,
      minSites: 1,
      model: 'dense-ae-32',
      hePreset: 'bgv-8192',
      dropout: 0.2,
      stragglers: 0.2,
      threads: 2,
      exportPath,
    });
    expect(report.encoding).toBe('he-bgv-8192');
    expect(report.rounds.map((r) => r.state)).toEqual(['sealed', 'sealed']);
    for (const r of report.rounds) expect(r.submitted + r.failed + r.timedOut).toBe(5);
    const dropouts = report.rounds.reduce((a, r) => a + r.failed + r.timedOut, 0);
    expect(dropouts).toBeGreaterThan(0);
    const verified = await verifyAuditExport(exportPath);
    expect(verified.findings).toEqual([]);
    expect(verified.ok).toBe(true);
    expect(verified.rounds.map((r) => [r.state, r.accepted, r.recomputed])).toEqual(
      report.rounds.map((r) => ['sealed', r.submitted, 'yes']),
    );
  }, 300_000);

  it('is deterministic for a seed', async () => {
    const run = () =>
      simulate({ ...base, sites: 4, minSites: 1, model: 'dense-ae-32', hePreset: 'plaintext', dropout: 0.3 });
    const shape = (r: Awaited<ReturnType<typeof run>>) =>
      r.rounds.map((x) => [x.state, x.submitted, x.failed, x.timedOut, x.aggregateDigest]);
    const [a, b] = [await run(), await run()];
    expect(shape(a)).toEqual(shape(b));
    expect(a.rounds.every((r) => r.aggregateDigest)).toBe(true);
  }, 300_000);

  it('refuses bad input with a clear message', () => {
    const bad: [string[], RegExp][] = [
      [['--sites', '0'], /--sites must be a whole number from 1 to 10000, got "0"/],
      [['--sites', 'many'], /--sites must be a whole number/],
      [[], /needs --sites N/],
      [['--sites', '3', '--rounds', '0'], /--rounds must be a whole number from 1/],
      [['--sites', '3', '--dropout', '1.5'], /--dropout must be a share from 0 to 1/],
      [['--sites', '3', '--he-preset', 'rsa'], /--he-preset must be bgv-8192, ckks-8192 or plaintext/],
      [['--sites', '3', '--model', 'vgg'], /--model must be one of/],
      [['--sites', '3', '--min-sites', '4'], /--min-sites must be a whole number from 1 to 3/],
      [['--sites', '3', '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [argv, message] of bad) expect(() => parseSimulateArgs(argv), argv.join(' ')).toThrow(message);
  });

  it('exits 2 with the message and starts nothing for --sites 0', async () => {
    const run = promisify(execFile)(process.execPath, [RADFED, 'simulate', '--sites', '0'], { cwd: dir });
    const err = await run.then(
      () => undefined,
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toMatch(/--sites must be a whole number from 1 to 10000, got "0"/);
    expect(err?.stdout).toBe('');
  }, 120_000);
});
