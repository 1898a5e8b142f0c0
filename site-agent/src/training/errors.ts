/** The selected tfjs backend failed its known-answer check, so its results cannot be trusted. */
export class BackendCheckError extends Error {
  override name = 'BackendCheckError';
}

/**
 * A training request the trainer cannot honour: a spec it cannot build, global weights of the wrong
 * length, images of the wrong size, or no images at all. The message says which, for the operator.
 */
export class TrainingInputError extends Error {
  override name = 'TrainingInputError';
}

/** A training worker thread could not start, crashed, or reported a failure. */
export class TrainingWorkerError extends Error {
  override name = 'TrainingWorkerError';
}
