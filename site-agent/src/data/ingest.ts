import type { Stats } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { z } from 'zod';
import { datasetCommitment, sha256Hex } from './commitment.js';
import { decodeFile } from './decode.js';
import { DatasetDirectoryError, DecodeError, describeThrown, formatBytes } from './errors.js';

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
   * Files whose decoding takes longer are skipped, in milliseconds. Default: no bound. Decoding runs
   * in-process for now and cannot be interrupted, so a slow file is decoded to the end and then
   * discarded; a hanging codec still hangs. Moving {@link decodeFile} into a worker makes this a
   * real timeout without changing which files are accepted.
   */
  decodeTimeoutMs?: number;
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
  decodeTimeoutMs: z.number().positive().optional(),
  maxSlicesPerFile: z.number().int().positive().default(16),
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
  /** Hex Merkle root over the sorted SHA-256 content hashes of accepted files ({@link datasetCommitment}). */
  commitment: string;
}

/** A site's local training data. */
export interface Dataset {
  /**
   * Training images in a stable order (by directory, then name; slices in stack order), each
   * `imageSize * imageSize` row-major, standardised per image to zero mean and unit variance.
   */
  images: Float32Array[];
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
    commitment: '',
  };
  const images: Float32Array[] = [];
  const contentHashes: string[] = [];
  const skip = (path: string, reason: string) =>
    report.skipped.push({ path: relative(root, path).split(sep).join('/'), reason });

  for await (const entry of walk(root, rootStats)) {
    if ('reason' in entry) {
      skip(entry.path, entry.reason);
      continue;
    }
    report.filesSeen++;
    const outcome = await ingestFile(entry.path, entry.stats, compiled);
    if ('reason' in outcome) {
      skip(entry.path, outcome.reason);
    } else {
      images.push(...outcome.images);
      contentHashes.push(outcome.contentHash);
      report.byModality[outcome.modality] =
        (report.byModality[outcome.modality] ?? 0) + outcome.images.length;
      report.byFormat[outcome.format] = (report.byFormat[outcome.format] ?? 0) + outcome.images.length;
    }
    await yieldToEventLoop();
  }
  report.imagesAccepted = images.length;
  report.commitment = datasetCommitment(contentHashes);
  return { images, report };
}

type FileOutcome =
  | { reason: string }
  | { images: Float32Array[]; contentHash: string; modality: string; format: string };

async function ingestFile(
  path: string,
  stats: Stats,
  options: CompiledLoadDatasetOptions,
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
  const started = performance.now();
  try {
    const decoded = decodeFile(bytes, path, {
      imageSize: options.imageSize,
      maxSlicesPerFile: options.maxSlicesPerFile,
      maxDecodedBytes: options.maxFileBytes,
    });
    const elapsedMs = performance.now() - started;
    if (options.decodeTimeoutMs !== undefined && elapsedMs > options.decodeTimeoutMs) {
      return {
        reason: `decoding took ${Math.round(elapsedMs)} ms, above the ${options.decodeTimeoutMs} ms limit (decodeTimeoutMs)`,
      };
    }
    return { ...decoded, contentHash: sha256Hex(bytes) };
  } catch (thrown) {
    if (thrown instanceof DecodeError) return { reason: thrown.message };
    // A codec bug (daikon's decoders throw TypeErrors and bare values on malformed input) must
    // cost one file, not the whole dataset.
    return { reason: `decoder failed: ${describeThrown(thrown)}` };
  }
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
