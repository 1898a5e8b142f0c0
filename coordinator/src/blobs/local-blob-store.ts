import { randomUUID } from 'node:crypto';
import { type FileHandle, mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { BlobNotFoundError, InvalidBlobKeyError } from '../errors.js';
import type { BlobStore } from './types.js';

/** Options for {@link LocalBlobStore}. */
export interface LocalBlobStoreOptions {
  /** Directory holding the blobs; created on first write. Each key maps to a file below it. */
  root: string;
}

/**
 * A {@link BlobStore} on the local filesystem: key `a/b/c` is the file `<root>/a/b/c`.
 *
 * Durability: every write is fsynced before it resolves, and so is the directory entry of a file
 * that a write created or replaced, so a crash after a write resolves loses nothing.
 *
 * Keys are plain relative paths; anything that could resolve outside `root` is refused with
 * {@link InvalidBlobKeyError} before the filesystem is touched. Segments starting with `.` are
 * reserved for this store's temporary files.
 */
export class LocalBlobStore implements BlobStore {
  readonly root: string;

  constructor(options: LocalBlobStoreOptions) {
    this.root = resolve(options.root);
  }

  /** Writes to a temporary sibling, fsyncs it, then renames it over the target (atomic on POSIX). */
  put(key: string, data: Uint8Array): Promise<void> {
    return this.putStream(key, (write) => write(data));
  }

  /** As {@link put}, the temporary file written chunk by chunk. */
  async putStream(
    key: string,
    produce: (write: (chunk: Uint8Array) => Promise<void>) => Promise<void>,
  ): Promise<void> {
    const path = this.pathOf(key);
    const dir = dirname(path);
    await ensureDir(dir);
    const temp = join(dir, `.${randomUUID()}.tmp`);
    try {
      await withFile(temp, 'wx', async (file) => {
        await produce(async (chunk) => {
          await file.writeFile(chunk);
        });
        await file.sync();
      });
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    await syncDir(dir);
  }

  async move(from: string, to: string): Promise<void> {
    const source = this.pathOf(from);
    const path = this.pathOf(to);
    const dir = dirname(path);
    await ensureDir(dir);
    try {
      await rename(source, path);
    } catch (err) {
      throw notFoundOr(err, from);
    }
    await syncDir(dir);
    if (dirname(source) !== dir) await syncDir(dirname(source));
  }

  async readInto(key: string, offset: number, into: Uint8Array): Promise<void> {
    assertNonNegativeInteger('offset', offset);
    try {
      await withFile(this.pathOf(key), 'r', async (file) => {
        let filled = 0;
        while (filled < into.byteLength) {
          const { bytesRead } = await file.read(into, filled, into.byteLength - filled, offset + filled);
          if (bytesRead === 0) {
            throw new RangeError(
              `blob ${JSON.stringify(key)} ends before byte ${offset + into.byteLength} (read ${filled} of ${into.byteLength} from ${offset})`,
            );
          }
          filled += bytesRead;
        }
      });
    } catch (err) {
      throw notFoundOr(err, key);
    }
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      return asUint8Array(await readFile(this.pathOf(key)));
    } catch (err) {
      throw notFoundOr(err, key);
    }
  }

  async read(key: string, offset: number, length: number): Promise<Uint8Array> {
    assertNonNegativeInteger('offset', offset);
    assertNonNegativeInteger('length', length);
    try {
      return await withFile(this.pathOf(key), 'r', async (file) => {
        const { size } = await file.stat();
        const buffer = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
        let filled = 0;
        while (filled < buffer.length) {
          const { bytesRead } = await file.read(buffer, filled, buffer.length - filled, offset + filled);
          // The file shrank under us (a concurrent truncate): return what was there.
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        return asUint8Array(buffer.subarray(0, filled));
      });
    } catch (err) {
      throw notFoundOr(err, key);
    }
  }

  async size(key: string): Promise<number | undefined> {
    try {
      const info = await stat(this.pathOf(key));
      // A directory is a key prefix (`rounds/<id>` of `rounds/<id>/sum`), not a blob.
      return info.isFile() ? info.size : undefined;
    } catch (err) {
      if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  async append(key: string, data: Uint8Array): Promise<void> {
    const path = this.pathOf(key);
    const dir = dirname(path);
    await ensureDir(dir);
    let created = true;
    // Opening exclusively first tells us whether the directory entry is new and must be fsynced.
    const file = await open(path, 'ax').catch(async (err: unknown) => {
      if (errorCode(err) !== 'EEXIST') throw err;
      created = false;
      return open(path, 'a');
    });
    try {
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
    if (created) await syncDir(dir);
  }

  /**
   * Truncates to `length` bytes. Refuses (RangeError) to grow a blob: a caller that expects more
   * bytes than are stored has lost data, and zero-filling would hide that.
   */
  async truncate(key: string, length: number): Promise<void> {
    assertNonNegativeInteger('length', length);
    try {
      await withFile(this.pathOf(key), 'r+', async (file) => {
        const { size } = await file.stat();
        if (length > size) {
          throw new RangeError(
            `cannot grow blob ${JSON.stringify(key)} from ${size} to ${length} bytes by truncating`,
          );
        }
        await file.truncate(length);
        await file.sync();
      });
    } catch (err) {
      throw notFoundOr(err, key);
    }
  }

  /** Deletes a blob; deleting an absent blob is not an error. */
  async delete(key: string): Promise<void> {
    try {
      await unlink(this.pathOf(key));
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
    }
  }

  /** Holds no open handles between calls, so there is nothing to release. */
  async close(): Promise<void> {}

  /** Maps a key to its file, refusing any key that is not a plain relative path. */
  private pathOf(key: string): string {
    if (key === '') throw new InvalidBlobKeyError(key, 'empty');
    if (key.includes('\0')) throw new InvalidBlobKeyError(key, 'contains NUL');
    if (key.includes('\\')) throw new InvalidBlobKeyError(key, 'contains a backslash');
    if (key.startsWith('/')) throw new InvalidBlobKeyError(key, 'absolute path');
    for (const segment of key.split('/')) {
      if (segment === '') throw new InvalidBlobKeyError(key, 'empty path segment');
      if (segment.startsWith('.')) {
        throw new InvalidBlobKeyError(key, `segment '${segment}' starts with '.'`);
      }
    }
    const path = join(this.root, key);
    // Belt and braces: the checks above already exclude `..`, but this is the property that matters.
    if (!path.startsWith(this.root + sep)) {
      throw new InvalidBlobKeyError(key, 'resolves outside the store root');
    }
    return path;
  }
}

async function withFile<T>(path: string, flags: string, fn: (file: FileHandle) => Promise<T>): Promise<T> {
  const file = await open(path, flags);
  try {
    return await fn(file);
  } finally {
    await file.close();
  }
}

/**
 * Creates `dir` and fsyncs the parent of every directory it created, so they survive a crash. `dir`
 * itself is left to the caller, which fsyncs it once its own new entry is in place.
 */
async function ensureDir(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  const top = dirname(first);
  for (let current = dirname(dir); ; current = dirname(current)) {
    await syncDir(current);
    if (current === top || current === dirname(current)) return;
  }
}

/** A rename or a new file is durable only once its directory is fsynced (POSIX). */
async function syncDir(dir: string): Promise<void> {
  // Windows cannot open a directory for fsync, and its renames are journaled by NTFS anyway.
  if (process.platform === 'win32') return;
  await withFile(dir, 'r', (handle) => handle.sync());
}

function notFoundOr(err: unknown, key: string): unknown {
  const code = errorCode(err);
  // ENOTDIR: a prefix of the key is a file; EISDIR: the key is a prefix of other keys.
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') {
    return new BlobNotFoundError(key, { cause: err });
  }
  return err;
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  return typeof err.code === 'string' ? err.code : undefined;
}

function assertNonNegativeInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  }
}

/** Callers compare and slice plain Uint8Arrays; a Buffer's subclass behaviour should not leak. */
function asUint8Array(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
