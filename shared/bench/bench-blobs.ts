/**
 * The blob files `pnpm bench:he` folds through, written as the coordinator's LocalBlobStore writes
 * them (coordinator/src/blobs/local-blob-store.ts): appends fsynced, whole blobs to a temporary file
 * that is fsynced and renamed into place, reads at an offset into a caller's buffer. So the bench
 * pays the engine's I/O; `shared` cannot import the coordinator, which depends on it. Keys are the
 * bench's own, so none of the store's key checks are repeated here.
 */
import { randomUUID } from 'node:crypto';
import { type FileHandle, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export class BenchBlobs {
  constructor(private readonly root: string) {}

  put(key: string, data: Uint8Array): Promise<void> {
    return this.putStream(key, (write) => write(data));
  }

  /** Written chunk by chunk to a temporary sibling, fsynced, then renamed over `key`. */
  async putStream(
    key: string,
    produce: (write: (chunk: Uint8Array) => Promise<void>) => Promise<void>,
  ): Promise<void> {
    const path = await this.pathFor(key);
    const temp = join(dirname(path), `.${randomUUID()}.tmp`);
    await withFile(temp, 'wx', async (file) => {
      await produce(async (chunk) => {
        await file.writeFile(chunk);
      });
      await file.sync();
    });
    await rename(temp, path);
  }

  async append(key: string, data: Uint8Array): Promise<void> {
    await withFile(await this.pathFor(key), 'a', async (file) => {
      await file.writeFile(data);
      await file.sync();
    });
  }

  /** Fills `into` from byte `offset` of `key`. */
  async readInto(key: string, offset: number, into: Uint8Array): Promise<void> {
    await withFile(join(this.root, key), 'r', async (file) => {
      let filled = 0;
      while (filled < into.byteLength) {
        const { bytesRead } = await file.read(into, filled, into.byteLength - filled, offset + filled);
        if (bytesRead === 0) throw new RangeError(`${key} ends before byte ${offset + into.byteLength}`);
        filled += bytesRead;
      }
    });
  }

  async size(key: string): Promise<number> {
    return (await stat(join(this.root, key))).size;
  }

  async move(from: string, to: string): Promise<void> {
    await rename(join(this.root, from), await this.pathFor(to));
  }

  async delete(key: string): Promise<void> {
    await unlink(join(this.root, key));
  }

  private async pathFor(key: string): Promise<string> {
    const path = join(this.root, key);
    await mkdir(dirname(path), { recursive: true });
    return path;
  }
}

async function withFile(path: string, flags: string, use: (file: FileHandle) => Promise<void>) {
  const file = await open(path, flags);
  try {
    await use(file);
  } finally {
    await file.close();
  }
}
