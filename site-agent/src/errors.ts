/** Site-agent failures: one class per failure, `name` set, `cause` passed on. */
import { RadFedError } from '@radfed/shared';

export class AgentStateError extends RadFedError {
  override name = 'AgentStateError';
}

export class NotEnrolledError extends RadFedError {
  override name = 'NotEnrolledError';
  constructor(stateDir: string) {
    super(`No enrolment found in ${stateDir}; run \`radfed-agent enrol --token TOKEN\` first.`);
  }
}

export class AlreadyEnrolledError extends RadFedError {
  override name = 'AlreadyEnrolledError';
  constructor(stateDir: string, siteId: string) {
    super(
      `${stateDir} already holds the enrolment of site ${siteId}; use another --state-dir to enrol a second site.`,
    );
  }
}

export class ModelTransferError extends RadFedError {
  override name = 'ModelTransferError';
}

/**
 * The federation's HE key bundle the coordinator relayed cannot be used by this site: no copy is
 * wrapped for it, it is for another preset, or a custodian or wrapper signature does not verify.
 */
export class HeKeyBundleError extends RadFedError {
  override name = 'HeKeyBundleError';
}

/** A task the site cannot take part in; the reason goes to the operator via DeclineTask. */
export class TaskDeclinedError extends RadFedError {
  override name = 'TaskDeclinedError';
}

/**
 * A file could not be turned into training images. The message is the reason recorded in the
 * ingest report, written for the site admin (what is wrong, and the bound if one was exceeded).
 */
export class DecodeError extends RadFedError {
  override name = 'DecodeError';
}

/** The dataset directory itself cannot be read, so there is no dataset to report on. */
export class DatasetDirectoryError extends RadFedError {
  override name = 'DatasetDirectoryError';
}

/** The selected tfjs backend failed its known-answer check, so its results cannot be trusted. */
export class BackendCheckError extends RadFedError {
  override name = 'BackendCheckError';
}

/**
 * A training request the trainer cannot honour: a spec it cannot build, global weights of the wrong
 * length, images of the wrong size, or no images at all. The message says which, for the operator.
 */
export class TrainingInputError extends RadFedError {
  override name = 'TrainingInputError';
}

/** A training worker thread could not start, crashed, or reported a failure. */
export class TrainingWorkerError extends RadFedError {
  override name = 'TrainingWorkerError';
}

/** A command line `radfed-agent` cannot run (unknown command or option, missing argument); exit status 2. */
export class UsageError extends RadFedError {
  override name = 'UsageError';
}

/** A configuration value (flag or environment variable) the agent cannot use; the message names it. Exit status 2. */
export class AgentConfigError extends RadFedError {
  override name = 'AgentConfigError';
}

/**
 * `radfed-agent backend install native` could not build the native backend: the message says why
 * and what to do; nothing is left installed by the failed attempt.
 */
export class NativeInstallError extends RadFedError {
  override name = 'NativeInstallError';
}

/** `model export` cannot produce the requested export; the message says what to do. */
export class ModelExportError extends RadFedError {
  override name = 'ModelExportError';
}
