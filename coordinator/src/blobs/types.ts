/**
 * Large binary objects (global models, staged and accepted updates, running aggregates) live
 * outside the database. Keys are slash-separated relative paths such as `rounds/<id>/sum`.
 */
export interface BlobStore {
  /** Writes the whole blob atomically: readers see the old blob or the new one, never a part. */
  put(key: string, data: Uint8Array): Promise<void>;
  /**
   * Writes the blob atomically from chunks: `produce` calls `write` for each chunk in order (each
   * may be reused once its write resolves); if `produce` throws, nothing is stored.
   */
  putStream(
    key: string,
    produce: (write: (chunk: Uint8Array) => Promise<void>) => Promise<void>,
  ): Promise<void>;
  /** Renames a blob atomically (replacing `to`); throws BlobNotFoundError when `from` is absent. */
  move(from: string, to: string): Promise<void>;
  /** Reads a whole blob; throws BlobNotFoundError when absent. */
  get(key: string): Promise<Uint8Array>;
  /**
   * Fills `into` with the blob's bytes from `offset`, into a buffer the caller reuses; throws
   * BlobNotFoundError when absent and RangeError when the blob ends first.
   */
  readInto(key: string, offset: number, into: Uint8Array): Promise<void>;
  /** Reads `length` bytes from `offset` (clamped at the end). */
  read(key: string, offset: number, length: number): Promise<Uint8Array>;
  /** Size in bytes, or undefined when absent. */
  size(key: string): Promise<number | undefined>;
  /** Appends to a blob (creating it), for resumable staged uploads; durable when it resolves. */
  append(key: string, data: Uint8Array): Promise<void>;
  /** Truncates a staged blob to `length` bytes (drops a torn tail after a crash). */
  truncate(key: string, length: number): Promise<void>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}
