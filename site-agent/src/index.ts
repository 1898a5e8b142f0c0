/** `@radfed/site-agent`: the hospital site's agent, usable in-process (tests, embedding). */
export { loadDataset } from './data/index.js';
export { AGENT_VERSION, type EnrolOptions, enrol } from './enrol/enrol.js';
export * from './errors.js';
export * from './export/index.js';
export { HE_KEY_FILE, HeKeyring, type HeKeyringOptions } from './he/keyring.js';
export { type EncodedUpdate, PLAINTEXT_ENCODING, type TaskEncoding, UpdateCodec } from './he/update-codec.js';
export * from './provenance/index.js';
export { type AgentIdentity, isEnrolled, loadIdentity } from './state/agent-state.js';
export { TaskRunner, UPDATE_ENCODING } from './tasks/run-task.js';
export { TaskLoop } from './tasks/task-loop.js';
export { averageFromSum, sharedPart, weightedUpdate, withShared } from './tasks/weights.js';
export {
  BACKEND_CANDIDATES,
  backendCannotRun,
  initialWeights,
  progressReporter,
  type SelectedBackend,
  selectBackend,
  TfjsTrainer,
  type Trainer,
} from './training/index.js';
export type {
  HeKeyBundle,
  KeyBundleView,
  KeyEvent,
  KeyWorkRequest,
  ModelInfo,
  TrainingTask,
  UpdateReceipt,
} from './transport/convert.js';
export {
  SiteClient,
  UPLOAD_CHUNK_BYTES,
  type UpdateSigner,
  type UploadInput,
} from './transport/site-client.js';
