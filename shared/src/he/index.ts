/**
 * Homomorphic encryption, the public side: presets, quantisation and headroom, the ciphertext wire
 * format, public parameters and ciphertext sums. Security: nothing exported here makes, takes or uses
 * a secret key; key generation, encryption and decryption live in `@radfed/shared/he-site`, which
 * only site agents import.
 */
export { type ByteSource, CiphertextSum } from './ciphertext-sum.js';
export {
  heKeyWrapContext,
  type KeyBundleClaim,
  type KeyWrapClaim,
  keyBundleStatement,
  keyWrapStatement,
} from './custody.js';
export {
  aggregateBytes,
  aggregateContributors,
  aggregateFrameBytes,
  checkFrames,
  ciphertextCount,
  FRAME_HEADER_BYTES,
  type FrameExpectation,
  type FrameHeader,
  type FrameKind,
  readFrameHeader,
  SEED_BYTES,
  updateBytes,
  updateFrameBytes,
  updateLayout,
} from './framing.js';
export { defaultHeThreads } from './pool.js';
export {
  checkPresetSecurity,
  DEFAULT_HE_PRESET,
  HE_PRESET_NAMES,
  HE_PRESETS,
  HE_STANDARD_128_MAX_BITS,
  type HeEncryption,
  type HePreset,
  type HePresetName,
  type HeScheme,
  hePreset,
  isEncrypted,
  isHePresetName,
  presetHash,
} from './presets.js';
export { decodePublicParameters, heKeyId, type PublicParameters } from './public-parameters.js';
export {
  aggregateErrorBound,
  averageFactor,
  PRECISION_BITS,
  planQuantisation,
  type QuantisationLimits,
  type QuantisationPlan,
  siteFactor,
} from './quantise.js';
