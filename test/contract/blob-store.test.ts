import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BlobNotFoundError,
  type BlobStore,
  InvalidBlobKeyError,
  LocalBlobStore,
} from '@radfed/coordinator/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const bytes = (...values: number[]) => new Uint8Array(values);
const text = (value: string) => new TextEncoder().encode(value);

/** Every file below `dir`, as paths relative to it. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
    .sort();
}

describe('LocalBlobStore', () => {
  let root: string;
  let store: BlobStore;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'radfed-blobs-'));
    store = new LocalBlobStore({ root: join(root, 'blobs') });
  });

  afterEach(async () => {
    await store.close();
    await rm(root, { recursive: true, force: true });
  });

  it('puts and gets a blob under a nested key, replacing it on a second put', async () => {
    await store.put('rounds/r1/sum', bytes(1, 2, 3));
    expect(await store.get('rounds/r1/sum')).toEqual(bytes(1, 2, 3));

    await store.put('rounds/r1/sum', bytes(9));
    expect(await store.get('rounds/r1/sum')).toEqual(bytes(9));
    expect(await store.size('rounds/r1/sum')).toBe(1);
  });

  it('stores an empty blob', async () => {
    await store.put('empty', bytes());
    expect(await store.get('empty')).toEqual(bytes());
    expect(await store.size('empty')).toBe(0);
  });

  it('reads ranges, clamped at the end', async () => {
    await store.put('model', text('0123456789'));
    expect(await store.read('model', 0, 4)).toEqual(text('0123'));
    expect(await store.read('model', 3, 2)).toEqual(text('34'));
    expect(await store.read('model', 8, 100)).toEqual(text('89'));
    expect(await store.read('model', 10, 5)).toEqual(bytes());
    expect(await store.read('model', 50, 5)).toEqual(bytes());
    expect(await store.read('model', 2, 0)).toEqual(bytes());
    await expect(store.read('model', -1, 2)).rejects.toThrow(RangeError);
    await expect(store.read('model', 0, 1.5)).rejects.toThrow(RangeError);
  });

  it('streams a put chunk by chunk, and stores nothing when the producer fails', async () => {
    const chunk = new Uint8Array(4);
    await store.putStream('rounds/r1/sum', async (write) => {
      for (let i = 0; i < 3; i++) {
        chunk.fill(i); // reused: each write must be done with it when it resolves
        await write(chunk);
      }
    });
    expect(await store.get('rounds/r1/sum')).toEqual(bytes(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2));
    await expect(
      store.putStream('rounds/r1/sum', async (write) => {
        await write(bytes(9, 9));
        throw new Error('fold refused');
      }),
    ).rejects.toThrow('fold refused');
    expect(await store.get('rounds/r1/sum')).toEqual(bytes(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2));
    expect(await listFiles(root)).toEqual(['blobs/rounds/r1/sum']);
  });

  it('reads into a caller buffer, and says when the blob ends first', async () => {
    await store.put('b', bytes(1, 2, 3, 4, 5));
    const into = new Uint8Array(3);
    await store.readInto('b', 1, into);
    expect(into).toEqual(bytes(2, 3, 4));
    await expect(store.readInto('b', 3, into)).rejects.toThrow(RangeError);
    await expect(store.readInto('absent', 0, into)).rejects.toBeInstanceOf(BlobNotFoundError);
  });

  it('moves a blob to another key, replacing what was there', async () => {
    await store.put('staging/u1', bytes(7, 7));
    await store.put('rounds/r1/updates/s1', bytes(1));
    await store.move('staging/u1', 'rounds/r1/updates/s1');
    expect(await store.get('rounds/r1/updates/s1')).toEqual(bytes(7, 7));
    expect(await store.size('staging/u1')).toBeUndefined();
    await expect(store.move('staging/u1', 'x')).rejects.toBeInstanceOf(BlobNotFoundError);
  });

  it('reports size, or undefined when absent', async () => {
    expect(await store.size('nothing/here')).toBeUndefined();
    await store.put('a/b', bytes(1, 2, 3, 4));
    expect(await store.size('a/b')).toBe(4);
    // A key prefix is a directory, not a blob.
    expect(await store.size('a')).toBeUndefined();
  });

  it('appends, creating the blob on the first append', async () => {
    await store.append('staged/u1', text('ab'));
    await store.append('staged/u1', text('cd'));
    await store.append('staged/u1', bytes());
    await store.append('staged/u1', text('e'));
    expect(await store.get('staged/u1')).toEqual(text('abcde'));
    expect(await store.size('staged/u1')).toBe(5);
  });

  it('truncates a staged blob, and will not grow one', async () => {
    await store.append('staged/u2', text('hello, torn tail'));
    await store.truncate('staged/u2', 5);
    expect(await store.get('staged/u2')).toEqual(text('hello'));
    await store.append('staged/u2', text('!'));
    expect(await store.get('staged/u2')).toEqual(text('hello!'));
    await store.truncate('staged/u2', 6);
    await store.truncate('staged/u2', 0);
    expect(await store.size('staged/u2')).toBe(0);
    await expect(store.truncate('staged/u2', 1)).rejects.toThrow(RangeError);
  });

  it('deletes, and deleting an absent blob is fine', async () => {
    await store.put('gone', bytes(1));
    await store.delete('gone');
    expect(await store.size('gone')).toBeUndefined();
    await store.delete('gone');
    await store.delete('never/was');
  });

  it('throws BlobNotFoundError for a missing blob, with the key and the cause', async () => {
    await store.put('a/b', bytes(1));
    for (const attempt of [
      () => store.get('missing'),
      () => store.read('missing', 0, 1),
      () => store.truncate('missing', 0),
      () => store.get('a'), // a directory
      () => store.get('a/b/c'), // below a file
    ]) {
      const err = await attempt().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BlobNotFoundError);
      expect((err as BlobNotFoundError).name).toBe('BlobNotFoundError');
      expect((err as BlobNotFoundError).cause).toBeDefined();
    }
  });

  it('rejects keys that are not plain relative paths, before touching the filesystem', async () => {
    const bad = [
      '',
      '../escape',
      'a/../../escape',
      'a/..',
      '..',
      '/etc/passwd',
      'a//b',
      'a/',
      './a',
      'a/./b',
      '.hidden',
      'a\\..\\b',
      'nul\0byte',
    ];
    for (const key of bad) {
      for (const attempt of [
        () => store.put(key, bytes(1)),
        () => store.get(key),
        () => store.read(key, 0, 1),
        () => store.size(key),
        () => store.append(key, bytes(1)),
        () => store.truncate(key, 0),
        () => store.delete(key),
      ]) {
        await expect(attempt(), `key ${JSON.stringify(key)}`).rejects.toBeInstanceOf(InvalidBlobKeyError);
      }
    }
    expect(await listFiles(root)).toEqual([]);
  });

  it('leaves no temporary files behind, even when a put fails', async () => {
    await store.put('models/v1', bytes(1, 2));
    await store.put('models/v1', bytes(3));
    await store.put('models/v2', bytes(4));
    await store.append('rounds/r/staged', bytes(5));
    // A key below an existing blob fails before any temporary file is made.
    await expect(store.put('rounds/r/staged/x', bytes(6))).rejects.toThrow();
    // Renaming over a directory fails after the temporary file was written.
    await expect(store.put('rounds', bytes(7))).rejects.toThrow();

    expect(await listFiles(join(root, 'blobs'))).toEqual(['models/v1', 'models/v2', 'rounds/r/staged']);
  });

  it('never lets a reader see a partly written blob', async () => {
    const small = new Uint8Array(1_000).fill(1);
    const large = new Uint8Array(4_000_000).fill(2);
    await store.put('global', small);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 20; i++) await store.put('global', i % 2 === 0 ? large : small);
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const seen = await store.get('global');
      const whole =
        (seen.length === small.length && seen.every((b) => b === 1)) ||
        (seen.length === large.length && seen.every((b) => b === 2));
      expect(whole).toBe(true);
      reads += 1;
    }
    await writer;
    expect(reads).toBeGreaterThan(0);
  });
});
