import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DASHBOARD_UI_DIR } from './server.js';

const UI = join(import.meta.dirname, '../../dashboard-ui');

describe('the committed dashboard UI build', () => {
  it('is what the UI sources build to (run `pnpm dashboard:build` and commit dist/ if not)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'radfed-dashboard-ui-'));
    try {
      await promisify(execFile)(
        process.execPath,
        [
          join(UI, 'node_modules/vite/bin/vite.js'),
          'build',
          '--outDir',
          out,
          '--emptyOutDir',
          '--logLevel',
          'error',
        ],
        { cwd: UI },
      );
      // Asset names carry content hashes, so equal pages mean equal bundles.
      expect(readFileSync(join(out, 'index.html'), 'utf8')).toBe(
        readFileSync(join(DASHBOARD_UI_DIR, 'index.html'), 'utf8'),
      );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);
});
