/**
 * Proof with clients RadFed did not write: PyTorch loads RadFed's safetensors exports strictly
 * (torchvision's resnet18 with a 1-channel stem and no classifier; conv4 as its documented module)
 * and computes the same features as RadFed's forward pass within 1e-4 relative. Fails, never skips,
 * when Python cannot run: `.ci/run` installs it (test/python/requirements.txt).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const here = join(import.meta.dirname, '../python');
const python = process.env.RADFED_PYTHON ?? join(here, '.venv/bin/python');
const dir = mkdtempSync(join(tmpdir(), 'radfed-torch-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('safetensors export in PyTorch', () => {
  it('loads strictly into torchvision and matches RadFed features within 1e-4', () => {
    expect(
      existsSync(python),
      `no Python at ${python}: run .ci/run, or make the venv as test/python/requirements.txt says (or set RADFED_PYTHON)`,
    ).toBe(true);
    const fixture = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'make_fixture.ts'), dir], {
      encoding: 'utf8',
    });
    expect(fixture.status, fixture.stderr).toBe(0);
    const check = spawnSync(python, [join(here, 'check_export.py'), dir], { encoding: 'utf8' });
    expect(check.status, `${check.stdout}\n${check.stderr}`).toBe(0);
    const report = JSON.parse(check.stdout) as {
      results: { architecture: string; relative_error: number }[];
    };
    expect(report.results.map((r) => r.architecture)).toEqual(['conv4', 'resnet18']);
    for (const r of report.results) expect(r.relative_error, r.architecture).toBeLessThanOrEqual(1e-4);
  }, 600_000);
});
