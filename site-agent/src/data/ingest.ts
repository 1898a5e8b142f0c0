import type { Stats } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { z } from 'zod';
import { DatasetDirectoryError } from '../errors.js';
import { datasetCommitment, sha256Hex } from './commitment.js';
import { DecodeSandbox } from './decode-sandbox.js';
import { describeThrown, formatBytes } from './reasons.js';

/** Options for {@link loadDataset}. */
export interface LoadDatasetOptions {
  /** Side of the square training images, in pixels (the model spec's inputSize). */
  imageSize: number;
  /**
   * Largest file read, in bytes; also the bound on what one file may decode or inflate to.
   * Default 256 MiB.
   */
  maxFileBytes?: number;
  /**
   * Time one file may take to decode, in milliseconds; default 30 s. Decoding runs in a worker
   * thread ({@link DecodeSandbox}), so a file that hangs its codec is stopped at this bound and
   * skipped with the reason, and the next file gets a fresh thread.
   */
  decodeTimeoutMs?: number;
  /**
   * `per-image` (default): each image to zero mean and unit variance. `per-site`: one scale per
   * modality over all the site's images (see {@link standardiseSite}).
   */
  standardisation?: 'per-image' | 'per-site';
  /** Most slices taken from one multi-frame DICOM or NIfTI volume, nearest its centre. Default 16. */
  maxSlicesPerFile?: number;
}

const loadDatasetOptionsSchema = z.object({
  imageSize: z.number().int().positive(),
  maxFileBytes: z
    .number()
    .int()
    .positive()
    .default(256 * 2 ** 20),
  decodeTimeoutMs: z.number().positive().default(30_000),
  maxSlicesPerFile: z.number().int().positive().default(16),
  standardisation: z.enum(['per-image', 'per-site']).default('per-image'),
});

/** {@link LoadDatasetOptions} with defaults applied and bounds checked. */
export type CompiledLoadDatasetOptions = z.output<typeof loadDatasetOptionsSchema>;

/** @throws RangeError naming the bad option. */
export function compileLoadDatasetOptions(options: LoadDatasetOptions): CompiledLoadDatasetOptions {
  const parsed = loadDatasetOptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new RangeError(`invalid dataset options: ${z.prettifyError(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

/**
 * What ingestion found. It stays at the site: `skipped` paths are the hospital's own file names and
 * may identify patients, so only counts and the commitment are fit to report onwards.
 */
export interface IngestReport {
  /** The dataset directory, resolved to an absolute path. */
  dir: string;
  /** Regular files found under `dir`, accepted or not. */
  filesSeen: number;
  /** Training images produced (a volume yields several); equals `images.length`. */
  imagesAccepted: number;
  /** Accepted images per modality (DICOM 0008,0060, else `unknown`). */
  byModality: Record<string, number>;
  /** Accepted images per container format (`dicom`, `nifti`, `png`). */
  byFormat: Record<string, number>;
  /** Files and directories that yielded no images, with the reason; paths relative to `dir`. */
  skipped: { path: string; reason: string }[];
  /** Every file and directory looked at, in the order read, with what came of it (`data check --list`). */
  files: IngestedFile[];
  /** Hex Merkle root over the sorted SHA-256 content hashes of accepted files ({@link datasetCommitment}). */
  commitment: string;
  /** Accepted images with a class label from `labels.csv` (see {@link LABELS_FILE}). */
  labelled: number;
}

/** What came of one file: the images taken from it, or why it was skipped. Paths are relative to the dataset root. */
export type IngestedFile =
  | {
      path: string;
      result: 'taken';
      /** Container format: `dicom`, `nifti` or `png`. */
      format: string;
      /** DICOM 0008,0060, else `unknown`. */
      modality: string;
      /** File size in bytes. */
      bytes: number;
      /** Training images taken from the file: 1 for a plain image, up to maxSlicesPerFile for a volume. */
      slices: number;
    }
  | {
      path: string;
      result: 'skipped';
      reason: string /** File size in bytes, when it is a file. */;
      bytes?: number;
    };

/**
 * Optional file at the dataset root giving class labels for local evaluation: one `path,label`
 * line per image file (path relative to the root, `/`-separated; a `path,label` header is
 * allowed). Labels never leave the site; only the k-NN accuracy they allow is reported.
 */
export const LABELS_FILE = 'labels.csv';

/** A site's local training data. */
export interface Dataset {
  /**
   * Training images in a stable order (by directory, then name; slices in stack order), each
   * `imageSize * imageSize` row-major, standardised per image to zero mean and unit variance.
   */
  images: Float32Array[];
  /** Class label of each image (aligned with `images`), when `labels.csv` names its file. */
  labels: (string | undefined)[];
  report: IngestReport;
}

/**
 * Loads every DICOM, NIfTI (.nii, .nii.gz) and PNG file under `dir`, recursively and following
 * symbolic links, into standardised grayscale training images. A file that cannot be used (not an
 * image, empty, too large, truncated, undecodable, blank) never fails the load: it is listed in the
 * report's `skipped` with a reason. The event loop is yielded between files so the agent stays
 * responsive during a long ingest.
 *
 * @throws DatasetDirectoryError when `dir` itself is missing, unreadable or not a directory.
 * @throws RangeError for invalid options.
 */
export async function loadDataset(dir: string, options: LoadDatasetOptions): Promise<Dataset> {
  const compiled = compileLoadDatasetOptions(options);
  const root = resolve(dir);
  let rootStats: Stats;
  try {
    rootStats = await stat(root);
  } catch (thrown) {
    throw new DatasetDirectoryError(`dataset directory ${root} cannot be read: ${describeThrown(thrown)}`, {
      cause: thrown,
    });
  }
  if (!rootStats.isDirectory()) throw new DatasetDirectoryError(`dataset path ${root} is not a directory`);

  const report: IngestReport = {
    dir: root,
    filesSeen: 0,
    imagesAccepted: 0,
    byModality: {},
    byFormat: {},
    skipped: [],
    files: [],
    commitment: '',
    labelled: 0,
  };
  const images: Float32Array[] = [];
  const labels: (string | undefined)[] = [];
  const modalities: string[] = [];
  const contentHashes: string[] = [];
  const relativePath = (path: string) => relative(root, path).split(sep).join('/');
  const skip = (path: string, reason: string, stats?: Stats) => {
    report.skipped.push({ path: relativePath(path), reason });
    report.files.push({
      path: relativePath(path),
      result: 'skipped',
      reason,
      ...(stats ? { bytes: stats.size } : {}),
    });
  };
  const labelOf = await readLabels(join(root, LABELS_FILE));

  const sandbox = new DecodeSandbox(compiled.decodeTimeoutMs);
  try {
    for await (const entry of walk(root, rootStats)) {
      if ('reason' in entry) {
        skip(entry.path, entry.reason);
        continue;
      }
      if (labelOf !== undefined && entry.path === join(root, LABELS_FILE)) continue;
      report.filesSeen++;
      const outcome = await ingestFile(entry.path, entry.stats, compiled, sandbox);
      if ('reason' in outcome) {
        skip(entry.path, outcome.reason, entry.stats);
      } else {
        report.files.push({
          path: relativePath(entry.path),
          result: 'taken',
          format: outcome.format,
          modality: outcome.modality,
          bytes: entry.stats.size,
          slices: outcome.images.length,
        });
        const label = labelOf?.get(relativePath(entry.path));
        for (const image of outcome.images) {
          images.push(image);
          labels.push(label);
          modalities.push(outcome.modality);
        }
        if (label !== undefined) report.labelled += outcome.images.length;
        contentHashes.push(outcome.contentHash);
        report.byModality[outcome.modality] =
          (report.byModality[outcome.modality] ?? 0) + outcome.images.length;
        report.byFormat[outcome.format] = (report.byFormat[outcome.format] ?? 0) + outcome.images.length;
      }
      await yieldToEventLoop();
    }
  } finally {
    await sandbox.close();
  }
  if (compiled.standardisation === 'per-site') standardiseSite(images, modalities);
  report.imagesAccepted = images.length;
  report.commitment = datasetCommitment(contentHashes);
  return { images, labels, report };
}

/** The labels file's `path -> label` map, or undefined when there is none. */
async function readLabels(path: string): Promise<Map<string, string> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const labels = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const comma = line.lastIndexOf(',');
    if (comma <= 0) continue;
    const file = line.slice(0, comma).trim();
    const label = line.slice(comma + 1).trim();
    if (label === '' || (file === 'path' && label === 'label')) continue;
    labels.set(file, label);
  }
  return labels;
}

/**
 * Per-site intensity standardisation, in place: for each modality, intensities are clipped to the
 * site's 0.5th-99.5th percentiles over all its images of that modality, then shifted and scaled to
 * zero mean and unit variance with that modality's mean and standard deviation. Unlike per-image
 * standardisation it keeps differences between a site's images (a denser CT stays brighter), while
 * still removing the site's scanner-specific scale. Percentiles come from a fixed-stride sample of
 * at most ~1M values, so the result does not depend on anything random.
 */
export function standardiseSite(images: Float32Array[], modalities: readonly string[]): void {
  const groups = new Map<string, Float32Array[]>();
  for (const [index, image] of images.entries()) {
    const modality = modalities[index] ?? 'unknown';
    groups.set(modality, [...(groups.get(modality) ?? []), image]);
  }
  for (const group of groups.values()) {
    const total = group.reduce((sum, image) => sum + image.length, 0);
    const stride = Math.max(1, Math.floor(total / 1_000_000));
    const sample: number[] = [];
    let position = 0;
    for (const image of group) {
      for (let i = (stride - (position % stride)) % stride; i < image.length; i += stride)
        sample.push(image[i] as number);
      position += image.length;
    }
    sample.sort((a, b) => a - b);
    const low = sample[Math.floor(0.005 * (sample.length - 1))] ?? 0;
    const high = sample[Math.ceil(0.995 * (sample.length - 1))] ?? 0;
    let sum = 0;
    let squares = 0;
    for (const image of group) {
      for (let i = 0; i < image.length; i++) {
        const value = Math.min(high, Math.max(low, image[i] as number));
        image[i] = value;
        sum += value;
        squares += value * value;
      }
    }
    const mean = sum / total;
    const std = Math.sqrt(Math.max(0, squares / total - mean * mean));
    const scale = std > 0 ? 1 / std : 0;
    for (const image of group)
      for (let i = 0; i < image.length; i++) image[i] = ((image[i] as number) - mean) * scale;
  }
}

type FileOutcome =
  | { reason: string }
  | { images: Float32Array[]; contentHash: string; modality: string; format: string };

async function ingestFile(
  path: string,
  stats: Stats,
  options: CompiledLoadDatasetOptions,
  sandbox: DecodeSandbox,
): Promise<FileOutcome> {
  // Checked before reading so an oversized file costs no memory.
  if (stats.size > options.maxFileBytes) {
    return {
      reason: `file is ${formatBytes(stats.size)}, above the ${formatBytes(options.maxFileBytes)} limit (maxFileBytes)`,
    };
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (thrown) {
    return { reason: `file could not be read: ${describeThrown(thrown)}` };
  }
  if (bytes.length > options.maxFileBytes) {
    return {
      reason: `file grew to ${formatBytes(bytes.length)} while being read, above the limit (maxFileBytes)`,
    };
  }
  const decoded = await sandbox.decode(bytes, path, {
    imageSize: options.imageSize,
    maxSlicesPerFile: options.maxSlicesPerFile,
    maxDecodedBytes: options.maxFileBytes,
    standardise: options.standardisation === 'per-image',
  });
  if ('reason' in decoded) return decoded;
  return { ...decoded, contentHash: sha256Hex(bytes) };
}

type WalkEntry = { path: string; stats: Stats } | { path: string; reason: string };

/**
 * Regular files under `root`, directory by directory (a directory's files, then its subdirectories),
 * names in code-unit order so the order is the same in every locale. Each directory is entered once,
 * which also stops symlink loops.
 */
async function* walk(root: string, rootStats: Stats): AsyncGenerator<WalkEntry> {
  const visited = new Set<string>([`${rootStats.dev}:${rootStats.ino}`]);
  const pending: string[] = [root];
  for (let dir = pending.shift(); dir !== undefined; dir = pending.shift()) {
    let names: string[];
    try {
      names = (await readdir(dir)).sort(byCodeUnits);
    } catch (thrown) {
      if (dir === root) {
        throw new DatasetDirectoryError(
          `dataset directory ${root} cannot be listed: ${describeThrown(thrown)}`,
          { cause: thrown },
        );
      }
      yield { path: dir, reason: `directory could not be listed: ${describeThrown(thrown)}` };
      continue;
    }
    const subdirs: string[] = [];
    for (const name of names) {
      const path = join(dir, name);
      let stats: Stats;
      try {
        stats = await stat(path);
      } catch (thrown) {
        yield { path, reason: `could not be inspected (broken link?): ${describeThrown(thrown)}` };
        continue;
      }
      if (stats.isDirectory()) {
        const id = `${stats.dev}:${stats.ino}`;
        if (!visited.has(id)) {
          visited.add(id);
          subdirs.push(path);
        }
      } else if (stats.isFile()) {
        yield { path, stats };
      } else {
        yield { path, reason: 'not a regular file (device, socket or pipe)' };
      }
    }
    pending.unshift(...subdirs);
  }
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
