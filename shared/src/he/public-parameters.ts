/**
 * A federation's public HE parameters, as the key custodian publishes them:
 *
 *   "RFHP" | version u8 | 0 (3) | preset hash (32) | key nonce (32)
 *   | parms length u32 | SEAL EncryptionParameters | public key length u32 | SEAL PublicKey (or empty)
 *
 * The key id is SHA-256 of these bytes. The random nonce makes it unique to one key generation, so
 * two federations on the same preset never share a key id. Security: nothing here decrypts; the
 * public key is present only for public-key presets (secret-key presets publish none, so only key
 * holders can make ciphertexts the coordinator accepts as well formed).
 */
import { sha256Hex } from '../canonical/canonical.js';
import { HeKeyError } from '../errors.js';

const MAGIC = 0x50484652; // "RFHP" read as little-endian u32
const VERSION = 1;
const FIXED_BYTES = 4 + 4 + 32 + 32;

/** Public HE parameters, decoded. */
export interface PublicParameters {
  presetHash: string;
  /** 32 random bytes (hex) drawn at key generation. */
  keyNonce: string;
  /** SEAL EncryptionParameters serialisation. */
  sealParameters: Uint8Array;
  /** SEAL PublicKey serialisation; empty for secret-key presets. */
  publicKey: Uint8Array;
}

/** Encodes public parameters; {@link heKeyId} of the result names the key. */
export function encodePublicParameters(p: PublicParameters): Uint8Array {
  const out = new Uint8Array(FIXED_BYTES + 4 + p.sealParameters.byteLength + 4 + p.publicKey.byteLength);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint8(4, VERSION);
  out.set(Buffer.from(p.presetHash, 'hex'), 8);
  out.set(Buffer.from(p.keyNonce, 'hex'), 40);
  let at = FIXED_BYTES;
  v.setUint32(at, p.sealParameters.byteLength, true);
  out.set(p.sealParameters, at + 4);
  at += 4 + p.sealParameters.byteLength;
  v.setUint32(at, p.publicKey.byteLength, true);
  out.set(p.publicKey, at + 4);
  return out;
}

/**
 * Decodes public parameters.
 * @throws HeKeyError when the bytes are not public parameters of this format.
 */
export function decodePublicParameters(bytes: Uint8Array): PublicParameters {
  const bad = (what: string) => new HeKeyError(`The HE public parameters are malformed (${what}).`);
  if (bytes.byteLength < FIXED_BYTES + 8) throw bad('too short');
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, true) !== MAGIC || v.getUint8(4) !== VERSION) throw bad('not RFHP version 1');
  let at = FIXED_BYTES;
  const parmsLength = v.getUint32(at, true);
  if (at + 4 + parmsLength + 4 > bytes.byteLength) throw bad('parameters overrun');
  const sealParameters = bytes.slice(at + 4, at + 4 + parmsLength);
  at += 4 + parmsLength;
  const keyLength = v.getUint32(at, true);
  if (at + 4 + keyLength !== bytes.byteLength) throw bad('public key length');
  return {
    presetHash: Buffer.from(bytes.subarray(8, 40)).toString('hex'),
    keyNonce: Buffer.from(bytes.subarray(40, 72)).toString('hex'),
    sealParameters,
    publicKey: bytes.slice(at + 4),
  };
}

/** The key id (hex SHA-256) of encoded public parameters: what every ciphertext frame names. */
export function heKeyId(publicParameters: Uint8Array): string {
  return sha256Hex(publicParameters);
}
