/**
 * Errors raised by `@radfed/shared`. One class per failure, each with `name` set so that logs and the
 * gRPC status table can tell them apart, and each passing `cause` on unchanged.
 */

/** Options accepted by every RadFed error: the underlying error, if any. */
export interface RadFedErrorOptions {
  cause?: unknown;
}

/** Base class of every RadFed error, so callers can tell ours from a library's with one `instanceof`. */
export class RadFedError extends Error {
  override name = 'RadFedError';

  constructor(message: string, options?: RadFedErrorOptions) {
    super(message, options);
  }
}

/** A certificate signing request could not be parsed, is not self-signed correctly, or uses a key we refuse. */
export class InvalidCsrError extends RadFedError {
  override name = 'InvalidCsrError';
}

/** Options for certificate issuance were invalid (empty or over-long common name, unknown role, bad SAN). */
export class InvalidCertificateOptionsError extends RadFedError {
  override name = 'InvalidCertificateOptionsError';
}

/**
 * Why a peer certificate was not trusted: not parseable, not issued by (or not signed by) our CA,
 * outside its validity window, a CA certificate used as a leaf, no single known role, or an extended
 * key usage that does not match the role.
 */
export type UntrustedPeerReason =
  | 'malformed'
  | 'wrong-issuer'
  | 'bad-signature'
  | 'not-yet-valid'
  | 'expired'
  | 'ca-certificate'
  | 'unknown-role'
  | 'wrong-key-usage';

/** A peer's TLS certificate does not identify a member of this federation. */
export class UntrustedPeerError extends RadFedError {
  override name = 'UntrustedPeerError';
  /** Machine-readable reason, for logs and metrics; the message says the same for a person. */
  readonly reason: UntrustedPeerReason;

  constructor(reason: UntrustedPeerReason, message: string, options?: RadFedErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

/** A dev PKI directory holds some of its files but not all, so it is neither loadable nor safe to overwrite. */
export class IncompleteDevPkiError extends RadFedError {
  override name = 'IncompleteDevPkiError';
}

/** A raw public key or PEM private key has the wrong length, type or encoding for its use. */
export class InvalidKeyError extends RadFedError {
  override name = 'InvalidKeyError';
}

/** A wrapped key could not be unwrapped: wrong recipient key, wrong context, or tampered ciphertext. */
export class KeyUnwrapError extends RadFedError {
  override name = 'KeyUnwrapError';
}

/** A value has no canonical JSON form (non-finite number, cycle, function, Map, class instance, ...). */
export class CanonicalJsonError extends RadFedError {
  override name = 'CanonicalJsonError';
}

/** An audit export file is not one this build can read: wrong format, a malformed line, or truncated. */
export class AuditExportFormatError extends RadFedError {
  override name = 'AuditExportFormatError';
}

/** An HE preset is unknown to this build or fails its security and consistency checks. */
export class HePresetError extends RadFedError {
  override name = 'HePresetError';
}

/**
 * A federation's limits (sites, samples per site, weight range) cannot be quantised into its HE
 * preset without overflowing the plaintext modulus or losing the promised precision.
 */
export class HeHeadroomError extends RadFedError {
  override name = 'HeHeadroomError';
}

/**
 * What is wrong with ciphertext bytes: another preset, another key, the wrong number of ciphertexts,
 * bytes missing, bytes that are not a well-formed ciphertext, or the wrong kind (update vs aggregate).
 */
export type HeFormatReason = 'preset' | 'key' | 'count' | 'truncated' | 'corrupt' | 'kind' | 'duplicate';

/** Ciphertext bytes are not a well-formed update or aggregate for the expected preset and key. */
export class HeFormatError extends RadFedError {
  override name = 'HeFormatError';
  readonly reason: HeFormatReason;

  constructor(reason: HeFormatReason, message: string, options?: RadFedErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

/** HE key material is malformed or does not belong with the public parameters it came with. */
export class HeKeyError extends RadFedError {
  override name = 'HeKeyError';
}

/** An HE worker thread failed or exited; the operation did not complete and may be retried. */
export class HeWorkerError extends RadFedError {
  override name = 'HeWorkerError';
}

/** Values handed to HE encryption cannot be encrypted (e.g. a weight that is not a finite number). */
export class HeInputError extends RadFedError {
  override name = 'HeInputError';
}
