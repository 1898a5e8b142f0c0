/**
 * `@radfed/shared/he-site`: the site's side of HE (key generation, encryption, decryption). Only
 * site agents, tests and benchmarks import this entry point; the coordinator never does (a unit test
 * in the coordinator package enforces it), so no secret-key operation is reachable from its code.
 */
export {
  ckksPublicKeyVariant,
  type DecryptedAverage,
  type EncryptedUpdate,
  type HeKeyMaterial,
  SiteHe,
} from './site-he.js';
