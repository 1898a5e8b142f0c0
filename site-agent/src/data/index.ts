export { datasetCommitment, sha256Hex } from './commitment.js';
export type { DecodedFile, DecodeOptions, ImageFormat } from './decode.js';
export { decodeFile, UNKNOWN_MODALITY } from './decode.js';
export { DatasetDirectoryError, DecodeError } from './errors.js';
export type { CompiledLoadDatasetOptions, Dataset, IngestReport, LoadDatasetOptions } from './ingest.js';
export { compileLoadDatasetOptions, loadDataset } from './ingest.js';
