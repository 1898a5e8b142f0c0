/**
 * Coordinator failures. Each class names one failure and carries a `kind`, which the transport's
 * status table (transport/status.ts) maps to a gRPC status code. Messages are sentences for the
 * person at the other end: what went wrong and what to do.
 */
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
  | 'aborted';

export abstract class RadfedError extends Error {
  abstract readonly kind: ErrorKind;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class InvalidRequestError extends RadfedError {
  override name = 'InvalidRequestError';
  readonly kind = 'invalid-argument';
}

export class InvalidSpecError extends RadfedError {
  override name = 'InvalidSpecError';
  readonly kind = 'invalid-argument';
}

export class FederationNotFoundError extends RadfedError {
  override name = 'FederationNotFoundError';
  readonly kind = 'not-found';
  constructor(ref: string) {
    super(`No federation "${ref}" exists; list them with \`radfed federations list\`.`);
  }
}

export class FederationExistsError extends RadfedError {
  override name = 'FederationExistsError';
  readonly kind = 'already-exists';
  constructor(name: string, options?: { cause?: unknown }) {
    super(`A federation named "${name}" already exists; choose another name.`, options);
  }
}

export class RoundNotFoundError extends RadfedError {
  override name = 'RoundNotFoundError';
  readonly kind = 'not-found';
  constructor(id: string) {
    super(`No round "${id}" exists; list rounds with \`radfed rounds list\`.`);
  }
}

export class SiteNotFoundError extends RadfedError {
  override name = 'SiteNotFoundError';
  readonly kind = 'not-found';
  constructor(ref: string) {
    super(`No site "${ref}" exists; list sites with \`radfed sites list\`.`);
  }
}

export class UnknownSiteError extends RadfedError {
  override name = 'UnknownSiteError';
  readonly kind = 'unauthenticated';
  constructor() {
    super('This certificate belongs to no enrolled site; enrol again with a fresh token from your operator.');
  }
}

export class SiteRevokedError extends RadfedError {
  override name = 'SiteRevokedError';
  readonly kind = 'permission-denied';
  constructor(reason: string) {
    super(`This site was revoked by the operator (${reason}); contact your consortium operator.`);
  }
}

export class NotAuthenticatedError extends RadfedError {
  override name = 'NotAuthenticatedError';
  readonly kind = 'unauthenticated';
}

export class WrongRoleError extends RadfedError {
  override name = 'WrongRoleError';
  readonly kind = 'permission-denied';
  constructor(role: string, allowed: readonly string[]) {
    super(`A ${role} certificate may not call this method; it needs a ${allowed.join(' or ')} certificate.`);
  }
}

export class InvalidTokenError extends RadfedError {
  override name = 'InvalidTokenError';
  readonly kind = 'permission-denied';
  constructor() {
    super('This enrolment token is not valid; ask the operator for a new one with `radfed sites invite`.');
  }
}

export class TokenExpiredError extends RadfedError {
  override name = 'TokenExpiredError';
  readonly kind = 'permission-denied';
  constructor(expiredAt: Date) {
    super(
      `This enrolment token expired at ${expiredAt.toISOString()}; ask the operator for a new one with \`radfed sites invite\`.`,
    );
  }
}

export class TokenUsedError extends RadfedError {
  override name = 'TokenUsedError';
  readonly kind = 'permission-denied';
  constructor() {
    super(
      'This enrolment token was already used; each token enrols one site. Ask the operator for a new one.',
    );
  }
}

export class InvalidCsrRequestError extends RadfedError {
  override name = 'InvalidCsrRequestError';
  readonly kind = 'invalid-argument';
}

export class RoundClosedError extends RadfedError {
  override name = 'RoundClosedError';
  readonly kind = 'failed-precondition';
  constructor(number: number, state: string) {
    super(`Round ${number} is ${state} and takes no more updates; wait for the next task.`);
  }
}

export class NotInvitedError extends RadfedError {
  override name = 'NotInvitedError';
  readonly kind = 'permission-denied';
  constructor(number: number) {
    super(
      `This site was not invited to round ${number}; it only takes updates from the sites it opened for.`,
    );
  }
}

export class AlreadyAnsweredError extends RadfedError {
  override name = 'AlreadyAnsweredError';
  readonly kind = 'already-exists';
}

export class StaleModelError extends RadfedError {
  override name = 'StaleModelError';
  readonly kind = 'failed-precondition';
  constructor(got: number, want: number) {
    super(
      `This update was trained from model version ${got}, but the round trains version ${want}; download ${want} and retrain.`,
    );
  }
}

export class UploadProtocolError extends RadfedError {
  override name = 'UploadProtocolError';
  readonly kind = 'invalid-argument';
}

export class DigestMismatchError extends RadfedError {
  override name = 'DigestMismatchError';
  readonly kind = 'invalid-argument';
  constructor() {
    super(
      'The uploaded bytes do not match the sha256 in the header; nothing was stored, upload the update again.',
    );
  }
}

export class InvalidUpdateError extends RadfedError {
  override name = 'InvalidUpdateError';
  readonly kind = 'invalid-argument';
}

export class ModelVersionNotFoundError extends RadfedError {
  override name = 'ModelVersionNotFoundError';
  readonly kind = 'not-found';
  constructor(version: number) {
    super(`Model version ${version} does not exist yet; train from the version your task names.`);
  }
}

export class ShuttingDownError extends RadfedError {
  override name = 'ShuttingDownError';
  readonly kind = 'unavailable';
  constructor() {
    super('The coordinator is shutting down; retry in a moment.');
  }
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export class FailedKeyBundleError extends RadfedError {
  override name = 'FailedKeyBundleError';
  readonly kind = 'failed-precondition';
  constructor() {
    super(
      'This federation uses the plaintext preset, which has no HE key bundle; key bundles exist only for HE presets.',
    );
  }
}

export class BlobNotHeldError extends RadfedError {
  override name = 'BlobNotHeldError';
  readonly kind = 'not-found';
  constructor(digest: string) {
    super(
      `The coordinator holds no blob with sha256 ${digest}: it was never stored, or the ciphertext retention policy deleted it (the ledger says which).`,
    );
  }
}

export class MissingUpdateSignatureError extends RadfedError {
  override name = 'MissingUpdateSignatureError';
  readonly kind = 'invalid-argument';
}

export class InvalidUpdateSignatureError extends RadfedError {
  override name = 'InvalidUpdateSignatureError';
  readonly kind = 'permission-denied';
  constructor() {
    super(
      "The update's signature does not verify against this site's enrolled signing key; nothing was stored. Check the agent signs with the key it enrolled with (signing.key in its state directory).",
    );
  }
}

export class HeKeysMissingError extends RadfedError {
  override name = 'HeKeysMissingError';
  readonly kind = 'failed-precondition';
  constructor(custodian: string) {
    super(
      `This federation's HE keys are not published yet; the key custodian (${custodian}) generates them when its agent next connects.`,
    );
  }
}

export class NoWrappedKeyError extends RadfedError {
  override name = 'NoWrappedKeyError';
  readonly kind = 'failed-precondition';
  constructor(custodian: string) {
    super(
      `No copy of the federation's HE key has been wrapped for this site yet; the key-holding site ${custodian} wraps it when its agent next connects.`,
    );
  }
}

export class NotKeyCustodianError extends RadfedError {
  override name = 'NotKeyCustodianError';
  readonly kind = 'permission-denied';
}

export class KeyBundleConflictError extends RadfedError {
  override name = 'KeyBundleConflictError';
  readonly kind = 'failed-precondition';
}

export class InvalidKeyBundleError extends RadfedError {
  override name = 'InvalidKeyBundleError';
  readonly kind = 'invalid-argument';
}

export class WrongHeKeyError extends RadfedError {
  override name = 'WrongHeKeyError';
  readonly kind = 'failed-precondition';
}

export class FederationFullError extends RadfedError {
  override name = 'FederationFullError';
  readonly kind = 'failed-precondition';
  constructor(name: string, maxSites: number) {
    super(
      `Federation ${name} already has its maximum of ${maxSites} enrolled sites (maxSites, which bounds its HE sums); the operator must revoke a site first.`,
    );
  }
}

export class UploadStalledError extends RadfedError {
  override name = 'UploadStalledError';
  readonly kind = 'deadline-exceeded';
  constructor(seconds: number, receivedBytes: number) {
    super(
      `The upload sent nothing for ${seconds} s and was stopped; ${receivedBytes} bytes are kept: ask GetUploadStatus and resume from its received_bytes.`,
    );
  }
}

/** Another request changed the same thing at the same moment; retrying is safe. */
export class ConcurrentChangeError extends RadfedError {
  override name = 'ConcurrentChangeError';
  readonly kind = 'aborted';
}

export class SiteNameTakenError extends RadfedError {
  override name = 'SiteNameTakenError';
  readonly kind = 'already-exists';
  constructor(siteName: string, options?: { cause?: unknown }) {
    super(
      `A site named "${siteName}" has already enrolled with another invite for that name; ask your operator for an invite under a different name.`,
      options,
    );
  }
}
