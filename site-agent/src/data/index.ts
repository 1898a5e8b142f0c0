export { DatasetDirectoryError, DecodeError } from '../errors.js';
export { datasetCommitment, sha256Hex } from './commitment.js';
export type { DecodedFile, DecodeOptions, ImageFormat } from './decode.js';
export { decodeFile, UNKNOWN_MODALITY } from './decode.js';
export { DecodeSandbox } from './decode-sandbox.js';
export type {
  CompiledLoadDatasetOptions,
  Dataset,
  IngestedFile,
  IngestReport,
  LoadDatasetOptions,
} from './ingest.js';
export { compileLoadDatasetOptions, LABELS_FILE, loadDataset, standardiseSite } from './ingest.js';
