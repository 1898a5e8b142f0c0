export { BlobNotFoundError, InvalidBlobKeyError } from '../errors.js';
export { LocalBlobStore, type LocalBlobStoreOptions } from './local-blob-store.js';
export type { BlobStore } from './types.js';
