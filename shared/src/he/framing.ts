/**
 * The wire format of encrypted updates and aggregates: a flat parameter vector packed into
 * ciphertexts of `slotsPerCiphertext` values, each ciphertext in its own fixed-size frame
 *
 *   "RFHC" | version u8 | kind u8 | 0 u16 | preset hash (32) | key id (32)
 *   | index u32 | count u32 | slots used u32 | payload length u32 | SEAL ciphertext (payload length)
 *
 * (integers little-endian). The frame says which preset and which key the ciphertext is under and
 * where it sits in the vector, so a ciphertext from another federation, key or position is refused
 * before it is added to anything. Payloads are SEAL 4.1 serialisations with compression off, whose
 * layout is fixed by the preset; {@link checkFrames} verifies every byte SEAL would otherwise trust
 * (a malformed length or PRNG field aborts the whole SEAL instance), and that every coefficient is
 * reduced modulo its prime.
 */
import { HeFormatError } from '../errors.js';
import type { HePreset } from './presets.js';

/** Bytes of a frame header. */
export const FRAME_HEADER_BYTES = 88;
const MAGIC = 0x43484652; // "RFHC" read as little-endian u32
const VERSION = 1;

/** `update`: fresh ciphertexts a site uploads. `aggregate`: the summed ciphertexts of a round. */
export type FrameKind = 'update' | 'aggregate';
const KIND_CODE: Record<FrameKind, number> = { update: 1, aggregate: 2 };

/** What a frame header says. */
export interface FrameHeader {
  kind: FrameKind;
  presetHash: string;
  keyId: string;
  index: number;
  count: number;
  slots: number;
  payloadBytes: number;
}

// SEAL serialisation layout (SEAL 4.1, compression none).
const SEAL_MAGIC = 0xa15e;
const SEAL_HEADER_BYTES = 16;
const CT_META_BYTES = 32 + 1 + 8 + 8 + 8 + 8 + 8; // parms_id, ntt flag, size, N, L, scale, correction
const DATA_OFFSET = SEAL_HEADER_BYTES + CT_META_BYTES + SEAL_HEADER_BYTES + 8; // 113
const PRNG_INFO_BYTES = SEAL_HEADER_BYTES + 1 + 64;
const PRNG_BLAKE2XB = 1;

/** Ciphertexts needed for `parameterCount` values. */
export function ciphertextCount(preset: HePreset, parameterCount: number): number {
  return Math.ceil(parameterCount / preset.slotsPerCiphertext);
}

/** Whether uploads under `preset` carry a seed in place of their second polynomial. */
export function isSeeded(preset: HePreset): boolean {
  return preset.encryption === 'secret-key';
}

/** SEAL payload bytes of one ciphertext of `kind`. */
export function payloadBytes(preset: HePreset, kind: FrameKind): number {
  return kind === 'update' ? preset.updateCiphertextBytes : preset.aggregateCiphertextBytes;
}

/** Bytes of one frame of `kind`. */
export function frameBytes(preset: HePreset, kind: FrameKind): number {
  return FRAME_HEADER_BYTES + payloadBytes(preset, kind);
}

/** Exact bytes of an update (or aggregate) of `parameterCount` values. */
export function framedBytes(preset: HePreset, kind: FrameKind, parameterCount: number): number {
  return ciphertextCount(preset, parameterCount) * frameBytes(preset, kind);
}

/** Primes a fresh ciphertext is reduced by: all but the special (key-switching) prime, if any. */
export function dataModuli(preset: HePreset): bigint[] {
  const all = preset.coeffModulus.map((p) => BigInt(p));
  return all.length > 1 ? all.slice(0, -1) : all;
}

/** Writes a frame header at `at`. */
export function writeFrameHeader(out: Uint8Array, at: number, h: FrameHeader): void {
  const v = new DataView(out.buffer, out.byteOffset + at, FRAME_HEADER_BYTES);
  v.setUint32(0, MAGIC, true);
  v.setUint8(4, VERSION);
  v.setUint8(5, KIND_CODE[h.kind]);
  v.setUint16(6, 0, true);
  out.set(hex32(h.presetHash), at + 8);
  out.set(hex32(h.keyId), at + 40);
  v.setUint32(72, h.index, true);
  v.setUint32(76, h.count, true);
  v.setUint32(80, h.slots, true);
  v.setUint32(84, h.payloadBytes, true);
}

/**
 * Reads the frame header at `at`.
 * @throws HeFormatError when the bytes there are not a frame header.
 */
export function readFrameHeader(bytes: Uint8Array, at: number): FrameHeader {
  if (at + FRAME_HEADER_BYTES > bytes.byteLength) {
    throw new HeFormatError('truncated', `The ciphertext bytes end inside a frame header at byte ${at}.`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset + at, FRAME_HEADER_BYTES);
  if (v.getUint32(0, true) !== MAGIC || v.getUint8(4) !== VERSION) {
    throw new HeFormatError(
      'corrupt',
      `The bytes at ${at} are not a RadFed ciphertext frame (version ${VERSION}).`,
    );
  }
  const code = v.getUint8(5);
  const kind = code === 1 ? 'update' : code === 2 ? 'aggregate' : undefined;
  if (!kind) throw new HeFormatError('corrupt', `Frame at byte ${at} has unknown kind ${code}.`);
  return {
    kind,
    presetHash: Buffer.from(bytes.subarray(at + 8, at + 40)).toString('hex'),
    keyId: Buffer.from(bytes.subarray(at + 40, at + 72)).toString('hex'),
    index: v.getUint32(72, true),
    count: v.getUint32(76, true),
    slots: v.getUint32(80, true),
    payloadBytes: v.getUint32(84, true),
  };
}

/** What {@link checkFrames} expects. */
export interface FrameExpectation {
  preset: HePreset;
  presetHash: string;
  kind: FrameKind;
  /** The federation's key id (hex), or undefined to accept any (e.g. when only the shape matters). */
  keyId: string | undefined;
  parameterCount: number;
  /**
   * Whether to check that every coefficient is reduced (default true). Bytes already checked, or
   * made by the coordinator itself, may skip it: SEAL re-checks coefficients and reports, whereas
   * the header and seed fields, always checked, are what would make it abort.
   */
  scanCoefficients?: boolean;
}

/**
 * Checks that `bytes` are exactly the frames of one `kind` vector of `parameterCount` values under
 * the expected preset and key, and that every SEAL payload is well formed (fixed fields equal to the
 * preset's, every coefficient below its prime, a known PRNG in every seed). Pure JavaScript: no SEAL,
 * no key. Returns the key id the frames carry.
 *
 * @throws HeFormatError with the reason (`preset`, `key`, `count`, `truncated`, `corrupt`, `kind`) and
 *   a sentence saying which frame and what to do.
 */
export function checkFrames(bytes: Uint8Array, expect: FrameExpectation): string {
  const { preset, kind } = expect;
  const count = ciphertextCount(preset, expect.parameterCount);
  const frame = frameBytes(preset, kind);
  const first = readFrameHeader(bytes, 0);
  if (first.presetHash !== expect.presetHash) {
    throw new HeFormatError(
      'preset',
      `These ciphertexts are under HE preset ${first.presetHash.slice(0, 12)}…, but this federation uses ${preset.name} (${expect.presetHash.slice(0, 12)}…); the agent must encrypt with the federation's preset.`,
    );
  }
  if (first.kind !== kind) {
    throw new HeFormatError('kind', `Expected ${kind} ciphertexts but got ${first.kind} ciphertexts.`);
  }
  if (expect.keyId !== undefined && first.keyId !== expect.keyId) {
    throw new HeFormatError(
      'key',
      `These ciphertexts are under HE key ${first.keyId.slice(0, 12)}…, not this federation's key ${expect.keyId.slice(0, 12)}…; fetch the federation's key bundle and encrypt again.`,
    );
  }
  if (first.count !== count) {
    throw new HeFormatError(
      'count',
      `The update has ${first.count} ciphertexts but this federation's model needs ${count} (${expect.parameterCount} values, ${preset.slotsPerCiphertext} a ciphertext).`,
    );
  }
  if (bytes.byteLength !== count * frame) {
    const reason = bytes.byteLength < count * frame ? 'truncated' : 'count';
    throw new HeFormatError(
      reason,
      `The ciphertext bytes are ${bytes.byteLength} long, but ${count} ${kind} ciphertexts of ${preset.name} take ${count * frame}.`,
    );
  }
  const template = payloadTemplate(preset, kind);
  const moduli = dataModuli(preset).map((q) => [Number(q >> 32n), Number(q & 0xffffffffn)] as const);
  for (let i = 0; i < count; i++) {
    const at = i * frame;
    const h = i === 0 ? first : readFrameHeader(bytes, at);
    const slots = Math.min(preset.slotsPerCiphertext, expect.parameterCount - i * preset.slotsPerCiphertext);
    if (
      h.kind !== kind ||
      h.presetHash !== first.presetHash ||
      h.keyId !== first.keyId ||
      h.count !== count ||
      h.index !== i ||
      h.slots !== slots ||
      h.payloadBytes !== payloadBytes(preset, kind)
    ) {
      throw new HeFormatError(
        'corrupt',
        `Ciphertext frame ${i} of ${count} does not match the others (kind, preset, key, position, size); the bytes are damaged, re-encrypt the update.`,
      );
    }
    checkPayload(
      bytes,
      at + FRAME_HEADER_BYTES,
      template,
      moduli,
      preset.polyModulusDegree,
      i,
      expect.scanCoefficients ?? true,
    );
  }
  return first.keyId;
}

interface PayloadTemplate {
  head: Uint8Array;
  coefficients: number;
  polys: number;
  trailer: Uint8Array | undefined;
}

const templates = new Map<string, PayloadTemplate>();

/** The fixed bytes every payload of `kind` under `preset` starts (and, when seeded, ends) with. */
function payloadTemplate(preset: HePreset, kind: FrameKind): PayloadTemplate {
  const key = `${preset.name}/${preset.encryption}/${kind}`;
  const cached = templates.get(key);
  if (cached) return cached;
  const n = preset.polyModulusDegree;
  const levels = dataModuli(preset).length;
  const seeded = kind === 'update' && isSeeded(preset);
  const polys = seeded ? 1 : 2;
  const coefficients = polys * n * levels;
  const total = payloadBytes(preset, kind);
  const head = new Uint8Array(DATA_OFFSET);
  const v = new DataView(head.buffer);
  sealHeader(v, 0, total);
  head.set(Buffer.from(preset.parmsId, 'hex'), 16);
  v.setUint8(48, 1); // ntt form: SEAL keeps BGV and CKKS ciphertexts in NTT form
  v.setBigUint64(49, 2n, true);
  v.setBigUint64(57, BigInt(n), true);
  v.setBigUint64(65, BigInt(levels), true);
  v.setFloat64(73, preset.scheme === 'ckks' ? preset.scale : 1, true);
  v.setBigUint64(81, 1n, true);
  sealHeader(v, 89, SEAL_HEADER_BYTES + 8 + 8 * coefficients);
  v.setBigUint64(105, BigInt(coefficients), true);
  let trailer: Uint8Array | undefined;
  if (seeded) {
    trailer = new Uint8Array(SEAL_HEADER_BYTES + 1);
    const t = new DataView(trailer.buffer);
    sealHeader(t, 0, PRNG_INFO_BYTES);
    t.setUint8(16, PRNG_BLAKE2XB);
  }
  const expectedTotal = DATA_OFFSET + 8 * coefficients + (seeded ? PRNG_INFO_BYTES : 0);
  if (expectedTotal !== total) {
    // The preset's byte counts and this layout disagree: a node-seal version this code does not know.
    throw new HeFormatError(
      'corrupt',
      `HE preset ${preset.name}: ciphertext layout is ${expectedTotal} bytes, not ${total}.`,
    );
  }
  const t: PayloadTemplate = { head, coefficients, polys, trailer };
  templates.set(key, t);
  return t;
}

function sealHeader(v: DataView, at: number, size: number): void {
  v.setUint16(at, SEAL_MAGIC, true);
  v.setUint8(at + 2, SEAL_HEADER_BYTES);
  v.setUint8(at + 3, 4); // SEAL 4.1
  v.setUint8(at + 4, 1);
  v.setUint8(at + 5, 0); // compression none
  v.setUint16(at + 6, 0, true);
  v.setBigUint64(at + 8, BigInt(size), true);
}

function checkPayload(
  bytes: Uint8Array,
  at: number,
  t: PayloadTemplate,
  moduli: (readonly [number, number])[],
  n: number,
  index: number,
  scan: boolean,
): void {
  const bad = (what: string) =>
    new HeFormatError(
      'corrupt',
      `Ciphertext ${index} is not a well-formed SEAL ciphertext for this preset (${what}); the bytes are damaged, re-encrypt the update.`,
    );
  for (let j = 0; j < t.head.length; j++) if (bytes[at + j] !== t.head[j]) throw bad(`header byte ${j}`);
  if (t.trailer) {
    const tat = at + DATA_OFFSET + 8 * t.coefficients;
    for (let j = 0; j < t.trailer.length; j++) if (bytes[tat + j] !== t.trailer[j]) throw bad('seed header');
  }
  if (!scan) return;
  const v = new DataView(bytes.buffer, bytes.byteOffset + at + DATA_OFFSET, 8 * t.coefficients);
  const levels = moduli.length;
  for (let poly = 0; poly < t.polys; poly++) {
    for (let level = 0; level < levels; level++) {
      const [qhi, qlo] = moduli[level]!;
      const base = ((poly * levels + level) * n) << 3;
      for (let c = 0; c < n; c++) {
        const lo = v.getUint32(base + (c << 3), true);
        const hi = v.getUint32(base + (c << 3) + 4, true);
        if (hi > qhi || (hi === qhi && lo >= qlo)) throw bad(`coefficient ${c} is not reduced`);
      }
    }
  }
}

function hex32(hex: string): Uint8Array {
  const b = Buffer.from(hex, 'hex');
  if (b.length !== 32) throw new HeFormatError('corrupt', `expected 32 bytes of hex, got ${b.length}`);
  return b;
}
