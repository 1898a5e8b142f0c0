/**
 * The coordinator can only ever hold public HE material: its package cannot reach SEAL directly, its
 * code never imports the site-side HE entry point, and the HE surface it can import (the public
 * `@radfed/shared` entry and the sum worker behind it) has nothing that makes, loads or uses a
 * secret key. So no coordinator code can construct a Decryptor, whatever it holds.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as shared from '@radfed/shared';
import { describe, expect, it } from 'vitest';

const coordinatorDir = join(import.meta.dirname, '../..');
const sharedHeDir = join(coordinatorDir, '../shared/src/he');
const SECRET = /\bSecretKey\b|\bDecryptor\b|\bKeyGenerator\b|\.decrypt\b|\bgenerateKeys\b|he-site/;

function sources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => join(e.parentPath, e.name));
}

describe('the coordinator holds and reaches public HE material only', () => {
  it('does not depend on node-seal, so it cannot load SEAL (and its Decryptor) itself', () => {
    const pkg = JSON.parse(readFileSync(join(coordinatorDir, 'package.json'), 'utf8'));
    expect(Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })).not.toContain('node-seal');
    // As the coordinator's own (ESM) code would: from its package, with no NODE_PATH (which pnpm's
    // bin shims set, and which only CommonJS lookups would consult).
    const { NODE_PATH: _ignored, ...env } = process.env;
    const probe = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', "import('node-seal').then(() => process.exit(0), () => process.exit(3))"],
      { cwd: coordinatorDir, env },
    );
    expect(probe.status).toBe(3);
  });

  it('never imports the site-side HE entry point or a secret-key type', () => {
    for (const file of sources(join(coordinatorDir, 'src'))) {
      const text = readFileSync(file, 'utf8');
      expect(text, file).not.toMatch(/@radfed\/shared\/he-site|from 'node-seal/);
    }
  });

  it('the public HE entry point exports nothing that makes or uses a secret key', () => {
    const names = Object.keys(shared);
    expect(names).toContain('CiphertextSum');
    expect(names.filter((n) => /secret|decrypt|keygen|generateKeys|SiteHe|Decryptor/i.test(n))).toEqual([]);
  });

  it("the public HE modules and the coordinator's worker never touch a secret key", () => {
    const publicModules = sources(sharedHeDir).filter((f) => !f.includes('/site/') && !f.endsWith('seal.ts'));
    expect(publicModules.map((f) => f.slice(sharedHeDir.length + 1))).toEqual(
      expect.arrayContaining(['ciphertext-sum.ts', 'sum-worker.ts', 'framing.ts']),
    );
    // The check itself works: the site's worker does all of it.
    expect(readFileSync(join(sharedHeDir, 'site/cipher-worker.ts'), 'utf8')).toMatch(SECRET);
    for (const file of publicModules) {
      // Comments may say what the module does not do; code may not do it.
      const code = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      expect(code, file).not.toMatch(SECRET);
    }
  });
});
