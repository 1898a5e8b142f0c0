/** A blob was read, truncated or sized for reading, but no blob is stored under `key`. */
export class BlobNotFoundError extends Error {
  override readonly name = 'BlobNotFoundError';
  readonly key: string;

  constructor(key: string, options?: ErrorOptions) {
    super(`no blob stored under key ${JSON.stringify(key)}`, options);
    this.key = key;
  }
}

/**
 * A key is not a plain relative path (empty, absolute, `.`/`..` or dot-prefixed segments, empty
 * segments, backslashes, NUL). Rejected before any filesystem call, so a key can never name a file
 * outside the store's root.
 */
export class InvalidBlobKeyError extends Error {
  override readonly name = 'InvalidBlobKeyError';
  readonly key: string;

  constructor(key: string, reason: string, options?: ErrorOptions) {
    super(`invalid blob key ${JSON.stringify(key)}: ${reason}`, options);
    this.key = key;
  }
}
