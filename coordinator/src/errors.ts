/**
 * Coordinator failures. Each class names one failure and carries a `kind`, which the transport's
 * status table (transport/status.ts) maps to a gRPC status code. Messages are sentences for the
 * person at the other end: what went wrong and what to do.
 */
import { RadFedError as SharedRadFedError } from '@radfed/shared';

export type ErrorKind =
  | 'invalid-argument'
  | 'not-found'
  | 'already-exists'
  | 'failed-precondition'
  | 'permission-denied'
  | 'unauthenticated'
  | 'resource-exhausted'
  | 'unavailable'
  | 'deadline-exceeded'
  | 'aborted'
  /**
   * A fault in the coordinator itself (a bug, a damaged store), not something the caller can fix:
   * the status table answers INTERNAL with an incident id and logs the error, never its message.
   */
  | 'internal';

/**
 * Base of every coordinator failure. It extends `@radfed/shared`'s `RadFedError`, so one
 * `instanceof` from shared tells any RadFed error from a library's; `kind` picks the gRPC status.
 */
export abstract class RadFedError extends SharedRadFedError {
  abstract readonly kind: ErrorKind;
}

export class InvalidRequestError extends RadFedError {
  override name = 'InvalidRequestError';
  readonly kind = 'invalid-argument';
}

export class InvalidSpecError extends RadFedError {
  override name = 'InvalidSpecError';
  readonly kind = 'invalid-argument';
}

export class FederationNotFoundError extends RadFedError {
  override name = 'FederationNotFoundError';
  readonly kind = 'not-found';
  constructor(ref: string) {
    super(`No federation "${ref}" exists; list them with \`radfed federations list\`.`);
  }
}

export class FederationExistsError extends RadFedError {
  override name = 'FederationExistsError';
  readonly kind = 'already-exists';
  constructor(name: string, options?: { cause?: unknown }) {
    super(`A federation named "${name}" already exists; choose another name.`, options);
  }
}

export class RoundNotFoundError extends RadFedError {
  override name = 'RoundNotFoundError';
  readonly kind = 'not-found';
  constructor(id: string) {
    super(`No round "${id}" exists; list rounds with \`radfed rounds list\`.`);
  }
}

export class SiteNotFoundError extends RadFedError {
  override name = 'SiteNotFoundError';
  readonly kind = 'not-found';
  constructor(ref: string) {
    super(`No site "${ref}" exists; list sites with \`radfed sites list\`.`);
  }
}

export class UnknownSiteError extends RadFedError {
  override name = 'UnknownSiteError';
  readonly kind = 'unauthenticated';
  constructor() {
    super('This certificate belongs to no enrolled site; enrol again with a fresh token from your operator.');
  }
}

export class SiteRevokedError extends RadFedError {
  override name = 'SiteRevokedError';
  readonly kind = 'permission-denied';
  constructor(reason: string) {
    super(`This site was revoked by the operator (${reason}); contact your consortium operator.`);
  }
}

export class NotAuthenticatedError extends RadFedError {
  override name = 'NotAuthenticatedError';
  readonly kind = 'unauthenticated';
}

export class WrongRoleError extends RadFedError {
  override name = 'WrongRoleError';
  readonly kind = 'permission-denied';
  constructor(role: string, allowed: readonly string[]) {
    super(`A ${role} certificate may not call this method; it needs a ${allowed.join(' or ')} certificate.`);
  }
}

export class InvalidTokenError extends RadFedError {
  override name = 'InvalidTokenError';
  readonly kind = 'permission-denied';
  constructor() {
    super('This enrolment token is not valid; ask the operator for a new one with `radfed sites invite`.');
  }
}

export class TokenExpiredError extends RadFedError {
  override name = 'TokenExpiredError';
  readonly kind = 'permission-denied';
  constructor(expiredAt: Date) {
    super(
      `This enrolment token expired at ${expiredAt.toISOString()}; ask the operator for a new one with \`radfed sites invite\`.`,
    );
  }
}

export class TokenUsedError extends RadFedError {
  override name = 'TokenUsedError';
  readonly kind = 'permission-denied';
  constructor() {
    super(
      'This enrolment token was already used; each token enrols one site. Ask the operator for a new one.',
    );
  }
}

export class InvalidCsrRequestError extends RadFedError {
  override name = 'InvalidCsrRequestError';
  readonly kind = 'invalid-argument';
}

export class RoundClosedError extends RadFedError {
  override name = 'RoundClosedError';
  readonly kind = 'failed-precondition';
  constructor(number: number, state: string) {
    super(`Round ${number} is ${state} and takes no more updates; wait for the next task.`);
  }
}

export class NotInvitedError extends RadFedError {
  override name = 'NotInvitedError';
  readonly kind = 'permission-denied';
  constructor(number: number) {
    super(
      `This site was not invited to round ${number}; it only takes updates from the sites it opened for.`,
    );
  }
}

export class AlreadyAnsweredError extends RadFedError {
  override name = 'AlreadyAnsweredError';
  readonly kind = 'already-exists';
}

export class StaleModelError extends RadFedError {
  override name = 'StaleModelError';
  readonly kind = 'failed-precondition';
  constructor(got: number, want: number) {
    super(
      `This update was trained from model version ${got}, but the round trains version ${want}; download ${want} and retrain.`,
    );
  }
}

export class UploadProtocolError extends RadFedError {
  override name = 'UploadProtocolError';
  readonly kind = 'invalid-argument';
}

export class DigestMismatchError extends RadFedError {
  override name = 'DigestMismatchError';
  readonly kind = 'invalid-argument';
  constructor() {
    super(
      'The uploaded bytes do not match the sha256 in the header; nothing was stored, upload the update again.',
    );
  }
}

export class InvalidUpdateError extends RadFedError {
  override name = 'InvalidUpdateError';
  readonly kind = 'invalid-argument';
}

export class ModelVersionNotFoundError extends RadFedError {
  override name = 'ModelVersionNotFoundError';
  readonly kind = 'not-found';
  constructor(version: number) {
    super(`Model version ${version} does not exist yet; train from the version your task names.`);
  }
}

export class ShuttingDownError extends RadFedError {
  override name = 'ShuttingDownError';
  readonly kind = 'unavailable';
  constructor() {
    super('The coordinator is shutting down; retry in a moment.');
  }
}

/** The coordinator's configuration (flags, environment, file) is invalid; the message names the field. */
export class ConfigError extends RadFedError {
  override name = 'ConfigError';
  readonly kind = 'invalid-argument';
}

/** A plaintext federation has no HE key bundle: there is none to publish, fetch or wrap. */
export class NoKeyBundleForPlaintextError extends RadFedError {
  override name = 'NoKeyBundleForPlaintextError';
  readonly kind = 'failed-precondition';
  constructor() {
    super(
      'This federation uses the plaintext preset, which has no HE key bundle; key bundles exist only for HE presets.',
    );
  }
}

export class BlobNotHeldError extends RadFedError {
  override name = 'BlobNotHeldError';
  readonly kind = 'not-found';
  constructor(digest: string) {
    super(
      `The coordinator holds no blob with sha256 ${digest}: it was never stored, or the ciphertext retention policy deleted it (the ledger says which).`,
    );
  }
}

export class MissingUpdateSignatureError extends RadFedError {
  override name = 'MissingUpdateSignatureError';
  readonly kind = 'invalid-argument';
}

export class InvalidUpdateSignatureError extends RadFedError {
  override name = 'InvalidUpdateSignatureError';
  readonly kind = 'permission-denied';
  constructor() {
    super(
      "The update's signature does not verify against this site's enrolled signing key; nothing was stored. Check the agent signs with the key it enrolled with (signing.key in its state directory).",
    );
  }
}

export class HeKeysMissingError extends RadFedError {
  override name = 'HeKeysMissingError';
  readonly kind = 'failed-precondition';
  constructor(custodian: string) {
    super(
      `This federation's HE keys are not published yet; the key custodian (${custodian}) generates them when its agent next connects.`,
    );
  }
}

export class NoWrappedKeyError extends RadFedError {
  override name = 'NoWrappedKeyError';
  readonly kind = 'failed-precondition';
  constructor(custodian: string) {
    super(
      `No copy of the federation's HE key has been wrapped for this site yet; the key-holding site ${custodian} wraps it when its agent next connects.`,
    );
  }
}

export class NotKeyCustodianError extends RadFedError {
  override name = 'NotKeyCustodianError';
  readonly kind = 'permission-denied';
}

export class KeyBundleConflictError extends RadFedError {
  override name = 'KeyBundleConflictError';
  readonly kind = 'failed-precondition';
}

export class InvalidKeyBundleError extends RadFedError {
  override name = 'InvalidKeyBundleError';
  readonly kind = 'invalid-argument';
}

export class WrongHeKeyError extends RadFedError {
  override name = 'WrongHeKeyError';
  readonly kind = 'failed-precondition';
}

export class FederationFullError extends RadFedError {
  override name = 'FederationFullError';
  readonly kind = 'failed-precondition';
  constructor(name: string, maxSites: number) {
    super(
      `Federation ${name} already has its maximum of ${maxSites} enrolled sites (maxSites, which bounds its HE sums); the operator must revoke a site first.`,
    );
  }
}

/** A round change the state machine forbids (rounds/states.ts), or one that lost a race. */
export class IllegalTransitionError extends RadFedError {
  override name = 'IllegalTransitionError';
  readonly kind = 'internal';
}

/** A blob was read, truncated or sized for reading, but no blob is stored under `key`. */
export class BlobNotFoundError extends RadFedError {
  override readonly name = 'BlobNotFoundError';
  readonly kind = 'internal';
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
export class InvalidBlobKeyError extends RadFedError {
  override readonly name = 'InvalidBlobKeyError';
  readonly kind = 'internal';
  readonly key: string;

  constructor(key: string, reason: string, options?: ErrorOptions) {
    super(`invalid blob key ${JSON.stringify(key)}: ${reason}`, options);
    this.key = key;
  }
}

/** A command line `radfed` or `radfed-coordinator` cannot run (unknown command or option, missing argument); exit status 2. */
export class UsageError extends SharedRadFedError {
  override name = 'UsageError';
}

export class UploadStalledError extends RadFedError {
  override name = 'UploadStalledError';
  readonly kind = 'deadline-exceeded';
  constructor(seconds: number, receivedBytes: number) {
    super(
      `The upload sent nothing for ${seconds} s and was stopped; ${receivedBytes} bytes are kept: ask GetUploadStatus and resume from its received_bytes.`,
    );
  }
}

/** Another request changed the same thing at the same moment; retrying is safe. */
export class ConcurrentChangeError extends RadFedError {
  override name = 'ConcurrentChangeError';
  readonly kind = 'aborted';
}

export class ReceiptNotFoundError extends RadFedError {
  override name = 'ReceiptNotFoundError';
  readonly kind = 'not-found';
  constructor(roundId: string) {
    super(
      `The ledger records no accepted update of this site in round ${roundId}: the upload did not complete, so there is no receipt; the agent uploads again while the round is open.`,
    );
  }
}

/**
 * `radfed audit verify` cannot recompute aggregates for this federation's update encoding (an HE
 * preset this build does not know, or an encoding that differs from the one it folds).
 */
export class UnsupportedEncodingError extends RadFedError {
  override name = 'UnsupportedEncodingError';
  readonly kind = 'failed-precondition';
}

export class SiteNameTakenError extends RadFedError {
  override name = 'SiteNameTakenError';
  readonly kind = 'already-exists';
  constructor(siteName: string, options?: { cause?: unknown }) {
    super(
      `A site named "${siteName}" has already enrolled with another invite for that name; ask your operator for an invite under a different name.`,
      options,
    );
  }
}
