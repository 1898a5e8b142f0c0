/** Site-agent failures: one class per failure, `name` set, `cause` passed on. */
export class AgentStateError extends Error {
  override name = 'AgentStateError';
}

export class NotEnrolledError extends Error {
  override name = 'NotEnrolledError';
  constructor(stateDir: string) {
    super(`No enrolment found in ${stateDir}; run \`radfed-agent enrol --token TOKEN\` first.`);
  }
}

export class AlreadyEnrolledError extends Error {
  override name = 'AlreadyEnrolledError';
  constructor(stateDir: string, siteId: string) {
    super(
      `${stateDir} already holds the enrolment of site ${siteId}; use another --state-dir to enrol a second site.`,
    );
  }
}

export class ModelTransferError extends Error {
  override name = 'ModelTransferError';
}

/** A task the site cannot take part in; the reason goes to the operator via DeclineTask. */
export class TaskDeclinedError extends Error {
  override name = 'TaskDeclinedError';
}

/** `model export` cannot produce the requested export; the message says what to do. */
export class ModelExportError extends Error {
  override name = 'ModelExportError';
}
