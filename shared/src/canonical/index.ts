/** Canonical encoding and hashing: the exact bytes that RadFed signs, chains and audits. */
export { canonicalJson, merkleRoot, sha256, sha256Hex } from './canonical.js';
