/**
 * Worker thread for sites: key generation, encryption and decryption. Security: the secret key
 * arrives in job messages from the site's own process and stays in this thread's memory; nothing
 * here sends it anywhere.
 */
import { createHash } from 'node:crypto';
import type { CipherText } from 'node-seal/implementation/cipher-text.js';
import type { Decryptor } from 'node-seal/implementation/decryptor.js';
import type { Encryptor } from 'node-seal/implementation/encryptor.js';
import type { PlainText } from 'node-seal/implementation/plain-text.js';
import type { PublicKey } from 'node-seal/implementation/public-key.js';
import type { SecretKey } from 'node-seal/implementation/secret-key.js';
import { HeKeyError } from '../../errors.js';
import {
  aggregateFrameBytes,
  aggregateLayout,
  FRAME_HEADER_BYTES,
  isSeeded,
  SEED_BYTES,
  sealTemplate,
  updateFrameBytes,
  updateLayout,
  updatePayloadBytes,
  writeFrameHeader,
} from '../framing.js';
import type { HePreset } from '../presets.js';
import { quantiseSlots, readSlots, scaleSlots } from '../quantise.js';
import { loadSeal, presetContextCache } from '../seal.js';
import { serveJobs } from '../serve.js';

/** The key a job runs under: sent with every job, kept per key id. */
export interface KeyArgs {
  preset: HePreset;
  keyId: string;
  secretKey: Uint8Array;
  /** Only for public-key presets. */
  publicKey: Uint8Array;
}

/**
 * Encrypts ciphertexts [from, to): `values` holds their float32 inputs (from slot from * slots on),
 * `output` receives their update frames. Both buffers are moved here and back.
 */
export interface EncryptJob extends KeyArgs {
  op: 'encrypt';
  presetHash: string;
  values: ArrayBuffer;
  parameterCount: number;
  /** Each value is clipped to +/-bound, multiplied by factor and (for BGV) rounded. */
  factor: number;
  bound: number;
  output: ArrayBuffer;
  from: number;
  to: number;
}

/**
 * Decrypts aggregate frames [from, to), held in `input`, into raw sums (float64, from slot
 * from * slots on) in `output`. Both buffers are moved here and back.
 */
export interface DecryptJob extends KeyArgs {
  op: 'decrypt';
  input: ArrayBuffer;
  parameterCount: number;
  /** Updates the aggregate sums (frames carry one seed each, for seeded presets). */
  contributors: number;
  output: ArrayBuffer;
  from: number;
  to: number;
}

interface KeyState {
  secretKey: SecretKey;
  publicKey: PublicKey;
  encryptor: Encryptor;
  decryptor: Decryptor;
}

const seal = await loadSeal();
const keys = new Map<string, KeyState>();

const contextFor = presetContextCache(seal);

function keyFor(args: KeyArgs): KeyState {
  // Keyed by the secret key itself too: a key id names public parameters, not the secret behind them.
  const cacheKey = `${args.preset.name}/${args.keyId}/${createHash('sha256').update(args.secretKey).digest('hex')}`;
  const cached = keys.get(cacheKey);
  if (cached) return cached;
  const { context } = contextFor(args.preset);
  const secretKey = seal.SecretKey();
  const publicKey = seal.PublicKey();
  try {
    secretKey.loadArray(context, args.secretKey);
    if (args.publicKey.byteLength > 0) publicKey.loadArray(context, args.publicKey);
    else {
      // SEAL's Encryptor wants a public key even for symmetric encryption; one derived here never leaves.
      const generator = seal.KeyGenerator(context, secretKey);
      const derived = generator.createPublicKey();
      publicKey.copy(derived);
      derived.delete();
      generator.delete();
    }
  } catch (err) {
    secretKey.delete();
    publicKey.delete();
    throw new HeKeyError(
      `The HE secret key does not load under ${args.preset.name}: ${(err as Error).message}`,
    );
  }
  const state: KeyState = {
    secretKey,
    publicKey,
    encryptor: seal.Encryptor(context, publicKey, secretKey),
    decryptor: seal.Decryptor(context, secretKey),
  };
  keys.set(cacheKey, state);
  return state;
}

serveJobs({
  keygen: async (raw) => {
    const { preset } = raw as unknown as { preset: HePreset };
    const { context, parms } = contextFor(preset);
    const generator = seal.KeyGenerator(context);
    const secret = generator.secretKey();
    let publicKey: Uint8Array = new Uint8Array(0);
    if (preset.encryption === 'public-key') {
      const pk = generator.createPublicKey();
      publicKey = pk.saveArray(seal.ComprModeType.none);
      pk.delete();
    }
    const result = {
      secretKey: secret.saveArray(seal.ComprModeType.none),
      sealParameters: parms.saveArray(seal.ComprModeType.none),
      publicKey,
    };
    secret.delete();
    generator.delete();
    return { result };
  },

  encrypt: async (raw) => {
    const job = raw as unknown as EncryptJob;
    const { preset } = job;
    const { context } = contextFor(preset);
    const key = keyFor(job);
    const values = new Float32Array(job.values);
    const base = job.from * preset.slotsPerCiphertext;
    const output = new Uint8Array(job.output);
    const frame = updateFrameBytes(preset);
    const size = updatePayloadBytes(preset);
    const slots = preset.slotsPerCiphertext;
    const count = Math.ceil(job.parameterCount / slots);
    const plain = seal.PlainText();
    const cipher = seal.CipherText();
    let clipped = 0;
    const batch = preset.scheme === 'bgv' ? seal.BatchEncoder(context) : undefined;
    const ckks = preset.scheme === 'ckks' ? seal.CKKSEncoder(context) : undefined;
    const ints = new BigInt64Array(slots);
    const intView = new Int32Array(ints.buffer);
    const reals = new Float64Array(slots);
    try {
      for (let i = job.from; i < job.to; i++) {
        const used = Math.min(slots, job.parameterCount - i * slots);
        const at = (i - job.from) * frame;
        if (batch) {
          clipped += quantiseSlots(values, i * slots - base, used, job.factor, job.bound, intView);
          batch.encode(ints, plain);
        } else {
          clipped += scaleSlots(values, i * slots - base, used, job.factor, job.bound, reals);
          ckks!.encode(reals, preset.scale, plain);
        }
        const bytes = encryptOne(key, plain, cipher, preset);
        if (bytes.byteLength !== size) {
          throw new HeKeyError(`ciphertext ${i} serialised to ${bytes.byteLength} bytes, not ${size}`);
        }
        writeFrameHeader(output, at, {
          kind: 'update',
          presetHash: job.presetHash,
          keyId: job.keyId,
          index: i,
          count,
          slots: used,
          payloadBytes: size,
        });
        output.set(bytes, at + FRAME_HEADER_BYTES);
      }
    } finally {
      batch?.delete();
      ckks?.delete();
      cipher.delete();
      plain.delete();
    }
    return { result: { clipped, output: job.output }, transfer: [job.output, job.values] };
  },

  decrypt: async (raw) => {
    const job = raw as unknown as DecryptJob;
    const { preset } = job;
    const { context } = contextFor(preset);
    const key = keyFor(job);
    const input = new Uint8Array(job.input);
    const output = new Float64Array(job.output);
    const frame = aggregateFrameBytes(preset, job.contributors);
    const slots = preset.slotsPerCiphertext;
    const plain = seal.PlainText();
    const cipher = seal.CipherText();
    const part = seal.CipherText();
    const evaluator = seal.Evaluator(context);
    const batch = preset.scheme === 'bgv' ? seal.BatchEncoder(context) : undefined;
    const ckks = preset.scheme === 'ckks' ? seal.CKKSEncoder(context) : undefined;
    const rebuild = sealRebuilder(preset);
    try {
      for (let i = job.from; i < job.to; i++) {
        const used = Math.min(slots, job.parameterCount - i * slots);
        const at = (i - job.from) * frame + FRAME_HEADER_BYTES;
        const into = (i - job.from) * slots;
        rebuild(input, at, job.contributors, (bytes, k) => {
          if (k === 0) cipher.loadArray(context, bytes);
          else {
            part.loadArray(context, bytes);
            evaluator.add(cipher, part, cipher);
          }
        });
        key.decryptor.decrypt(cipher, plain);
        if (batch) {
          const decoded = batch.decodeBigInt(plain, true);
          readSlots(new Int32Array(decoded.buffer, decoded.byteOffset, 2 * slots), used, output, into);
        } else {
          const decoded = ckks!.decode(plain);
          output.set(decoded.subarray(0, used), into);
        }
      }
    } finally {
      batch?.delete();
      ckks?.delete();
      evaluator.delete();
      part.delete();
      cipher.delete();
      plain.delete();
    }
    return { result: { output: job.output }, transfer: [job.output, job.input] };
  },
});

/**
 * Turns one aggregate payload back into SEAL ciphertexts whose sum is the aggregate ciphertext, handing
 * each serialisation to `use` (the buffer is reused between calls). Seeded presets: one seeded
 * ciphertext per contributor, the first carrying the summed c0 and the others a zero c0, so SEAL's
 * load expands each contributor's seed into its c1. Public-key presets: the one full ciphertext.
 */
function sealRebuilder(
  preset: HePreset,
): (
  input: Uint8Array,
  payloadAt: number,
  contributors: number,
  use: (bytes: Uint8Array, k: number) => void,
) => void {
  const seeded = isSeeded(preset);
  const t = sealTemplate(preset, seeded ? 'fresh' : 'full');
  const agg = aggregateLayout(preset);
  const fresh = updateLayout(preset);
  const scratch = new Uint8Array(t.bytes);
  scratch.set(t.head, 0);
  if (t.trailer) scratch.set(t.trailer, fresh.coefficientsAt + 8 * t.coefficients);
  const coefficients = 8 * t.coefficients;
  return (input, payloadAt, contributors, use) => {
    const c = payloadAt + agg.coefficientsAt;
    scratch.set(input.subarray(c, c + coefficients), fresh.coefficientsAt);
    if (!seeded) {
      use(scratch, 0);
      return;
    }
    for (let k = 0; k < contributors; k++) {
      if (k === 1) scratch.fill(0, fresh.coefficientsAt, fresh.coefficientsAt + coefficients);
      const s = payloadAt + agg.seedAt + k * SEED_BYTES;
      scratch.set(input.subarray(s, s + SEED_BYTES), fresh.seedAt);
      use(scratch, k);
    }
  };
}

function encryptOne(key: KeyState, plain: PlainText, cipher: CipherText, preset: HePreset): Uint8Array {
  if (preset.encryption === 'public-key') {
    key.encryptor.encrypt(plain, cipher);
    return cipher.saveArray(seal.ComprModeType.none);
  }
  // Seeded: the second polynomial is replaced by the 64-byte seed it was drawn from.
  const serializable = key.encryptor.encryptSymmetricSerializable(plain);
  const bytes = serializable.saveArray(seal.ComprModeType.none);
  serializable.delete();
  return bytes;
}
