/**
 * The wire format of encrypted updates and aggregates: a flat parameter vector packed into
 * ciphertexts of `slotsPerCiphertext` values, each ciphertext in its own frame
 *
 *   "RFHC" | version u8 | kind u8 | 0 u16 | preset hash (32) | key id (32)
 *   | index u32 | count u32 | slots used u32 | payload length u32 | payload (payload length)
 *
 * (integers little-endian). The frame says which preset and which key the ciphertext is under and
 * where it sits in the vector, so a ciphertext from another federation, key or position is refused
 * before it is added to anything.
 *
 * An update's payload is a SEAL 4.1 serialisation with compression off, whose layout is fixed by the
 * preset: for secret-key presets the first polynomial c0 and the 64-byte seed the second one, c1, is
 * drawn from. {@link checkFrames} verifies every byte SEAL would otherwise trust (a malformed length
 * or PRNG field aborts the whole SEAL instance), and that every coefficient is reduced modulo its
 * prime.
 *
 * An aggregate's payload is RadFed's own ("seed-list" form):
 *
 *   contributors u32 | polynomials u32 | summed coefficients (u64 each, SEAL's order)
 *   | seeds (64 bytes each, one per contributor, ascending byte order)
 *
 * For seeded presets the coordinator adds only the c0 polynomials and keeps the contributors' seeds:
 * the sum of the c1 polynomials is the sum of what the seeds expand to, which the sites (who decrypt
 * anyway, with SEAL) expand themselves. So the coordinator's fold is modular additions in JavaScript,
 * with no SEAL and no seed expansion, and an aggregate is half the size of a summed SEAL ciphertext.
 * Public-key presets have no seeds: both polynomials are summed. Seeds are kept sorted, so an
 * aggregate is a function of the set of updates in it, whatever order they were folded in, and an
 * update already in a sum is recognised by its seeds.
 */
import { HeFormatError } from '../errors.js';
import type { HePreset } from './presets.js';

/** Bytes of a frame header. */
export const FRAME_HEADER_BYTES = 88;
const MAGIC = 0x43484652; // "RFHC" read as little-endian u32
const VERSION = 1;

/** `update`: fresh ciphertexts a site uploads. `aggregate`: the summed ciphertexts of a round. */
export type FrameKind = 'update' | 'aggregate';
/** Kind code 2 was the summed-SEAL-ciphertext aggregate of RadFed 0.1's first builds; it is refused. */
const KIND_CODE: Record<FrameKind, number> = { update: 1, aggregate: 3 };

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
/** Bytes of a seed: SEAL's 512-bit PRNG seed. */
export const SEED_BYTES = 64;
const PRNG_INFO_BYTES = SEAL_HEADER_BYTES + 1 + SEED_BYTES;
const PRNG_BLAKE2XB = 1;
/** Bytes before an aggregate payload's coefficients (contributors, polynomials). */
const AGGREGATE_META_BYTES = 8;

/** Ciphertexts needed for `parameterCount` values. */
export function ciphertextCount(preset: HePreset, parameterCount: number): number {
  return Math.ceil(parameterCount / preset.slotsPerCiphertext);
}

/** Whether uploads under `preset` carry a seed in place of their second polynomial. */
export function isSeeded(preset: HePreset): boolean {
  return preset.encryption === 'secret-key';
}

/**
 * Where things are in one ciphertext's payload. For updates, offsets are into the SEAL serialisation;
 * `seedAt` is -1 when there is no seed. For aggregates, `seedAt` is where the seed list starts.
 */
export interface PayloadLayout {
  /** Offset of the first coefficient (u64 little-endian). */
  coefficientsAt: number;
  /** Coefficients: polynomials x levels x N. */
  coefficients: number;
  polys: number;
  levels: number;
  seedAt: number;
}

/** The layout of an update payload under `preset`. */
export function updateLayout(preset: HePreset): PayloadLayout {
  const levels = dataModuli(preset).length;
  const polys = isSeeded(preset) ? 1 : 2;
  const coefficients = polys * preset.polyModulusDegree * levels;
  const seedAt = isSeeded(preset) ? DATA_OFFSET + 8 * coefficients + SEAL_HEADER_BYTES + 1 : -1;
  return { coefficientsAt: DATA_OFFSET, coefficients, polys, levels, seedAt };
}

/** The layout of an aggregate payload under `preset` (seeds start at `seedAt`, if seeded). */
export function aggregateLayout(preset: HePreset): PayloadLayout {
  const levels = dataModuli(preset).length;
  const polys = isSeeded(preset) ? 1 : 2;
  const coefficients = polys * preset.polyModulusDegree * levels;
  const coefficientsAt = AGGREGATE_META_BYTES;
  return { coefficientsAt, coefficients, polys, levels, seedAt: coefficientsAt + 8 * coefficients };
}

/** Payload bytes of one update ciphertext. */
export function updatePayloadBytes(preset: HePreset): number {
  return preset.updateCiphertextBytes;
}

/** Payload bytes of one aggregate ciphertext summing `contributors` updates. */
export function aggregatePayloadBytes(preset: HePreset, contributors: number): number {
  const l = aggregateLayout(preset);
  return l.seedAt + (isSeeded(preset) ? contributors * SEED_BYTES : 0);
}

/** Bytes of one update frame. */
export function updateFrameBytes(preset: HePreset): number {
  return FRAME_HEADER_BYTES + updatePayloadBytes(preset);
}

/** Bytes of one aggregate frame summing `contributors` updates. */
export function aggregateFrameBytes(preset: HePreset, contributors: number): number {
  return FRAME_HEADER_BYTES + aggregatePayloadBytes(preset, contributors);
}

/** Exact bytes of an update of `parameterCount` values. */
export function updateBytes(preset: HePreset, parameterCount: number): number {
  return ciphertextCount(preset, parameterCount) * updateFrameBytes(preset);
}

/** Exact bytes of an aggregate of `parameterCount` values summing `contributors` updates. */
export function aggregateBytes(preset: HePreset, parameterCount: number, contributors: number): number {
  return ciphertextCount(preset, parameterCount) * aggregateFrameBytes(preset, contributors);
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

/** Writes an aggregate payload's contributor and polynomial counts at `at` (the payload's start). */
export function writeAggregateMeta(out: Uint8Array, at: number, contributors: number, polys: number): void {
  const v = new DataView(out.buffer, out.byteOffset + at, AGGREGATE_META_BYTES);
  v.setUint32(0, contributors, true);
  v.setUint32(4, polys, true);
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
  const kind = code === KIND_CODE.update ? 'update' : code === KIND_CODE.aggregate ? 'aggregate' : undefined;
  if (code === 2) {
    throw new HeFormatError(
      'kind',
      'This aggregate is in the summed-SEAL-ciphertext form of an earlier RadFed build; recompute it with this version.',
    );
  }
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

/**
 * How many updates the aggregate `bytes` sums, read from its first frame (0 when the bytes are too
 * short to say). Checked against every frame by {@link checkFrames}.
 */
export function aggregateContributors(bytes: Uint8Array): number {
  if (bytes.byteLength < FRAME_HEADER_BYTES + AGGREGATE_META_BYTES) return 0;
  return new DataView(bytes.buffer, bytes.byteOffset + FRAME_HEADER_BYTES, 4).getUint32(0, true);
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
   * For aggregates: how many updates it must sum (e.g. the round's site count), or undefined to
   * accept any number from 1 up.
   */
  contributors?: number;
  /**
   * Whether to check that every coefficient is reduced (default true). The coordinator's fold checks
   * coefficients as it adds them, so it skips this scan; the header, seed and length fields, always
   * checked, are what would make SEAL abort.
   */
  scanCoefficients?: boolean;
  /**
   * When `bytes` are a run of frames out of a larger vector (streamed in chunks): the index of its
   * first frame and the byte length of the whole vector. Default: `bytes` are the whole vector.
   */
  range?: { firstIndex: number; totalBytes: number };
}

/**
 * Checks that `bytes` are exactly the frames of one `kind` vector of `parameterCount` values under
 * the expected preset and key, and that every payload is well formed (fixed fields equal to the
 * preset's, every coefficient below its prime, a known PRNG in every update seed, for aggregates one
 * contributor count and strictly ascending seeds). Pure JavaScript: no SEAL, no key. Returns the key
 * id the frames carry.
 *
 * @throws HeFormatError with the reason (`preset`, `key`, `count`, `truncated`, `corrupt`, `kind`) and
 *   a sentence saying which frame and what to do.
 */
export function checkFrames(bytes: Uint8Array, expect: FrameExpectation): string {
  const { preset, kind } = expect;
  const count = ciphertextCount(preset, expect.parameterCount);
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
      `The ${kind} has ${first.count} ciphertexts but this federation's model needs ${count} (${expect.parameterCount} values, ${preset.slotsPerCiphertext} a ciphertext).`,
    );
  }
  const contributors = kind === 'aggregate' ? aggregateContributors(bytes) : 0;
  if (kind === 'aggregate') {
    const want = expect.contributors;
    if (contributors < 1 || (want !== undefined && contributors !== want)) {
      throw new HeFormatError(
        'count',
        `The aggregate sums ${contributors} updates, but ${want ?? 'at least 1'} ${want === 1 ? 'was' : 'were'} expected; download the round's aggregate again.`,
      );
    }
  }
  const frame = kind === 'update' ? updateFrameBytes(preset) : aggregateFrameBytes(preset, contributors);
  const total = expect.range?.totalBytes ?? bytes.byteLength;
  if (total !== count * frame) {
    const reason = total < count * frame ? 'truncated' : 'count';
    throw new HeFormatError(
      reason,
      `The ciphertext bytes are ${total} long, but ${count} ${kind} ciphertexts of ${preset.name} take ${count * frame}.`,
    );
  }
  const firstIndex = expect.range?.firstIndex ?? 0;
  const frames = bytes.byteLength / frame;
  if (!Number.isInteger(frames) || firstIndex + frames > count) {
    throw new RangeError(`checkFrames: ${bytes.byteLength} bytes are not whole frames from ${firstIndex}`);
  }
  const moduli = dataModuli(preset).map((q) => [Number(q >> 32n), Number(q & 0xffffffffn)] as const);
  const payload = frame - FRAME_HEADER_BYTES;
  const scan = expect.scanCoefficients ?? true;
  const template = kind === 'update' ? sealTemplate(preset, 'fresh') : undefined;
  const layout = kind === 'update' ? updateLayout(preset) : aggregateLayout(preset);
  for (let i = firstIndex; i < firstIndex + frames; i++) {
    const at = (i - firstIndex) * frame;
    const h = i === firstIndex ? first : readFrameHeader(bytes, at);
    const slots = Math.min(preset.slotsPerCiphertext, expect.parameterCount - i * preset.slotsPerCiphertext);
    if (
      h.kind !== kind ||
      h.presetHash !== first.presetHash ||
      h.keyId !== first.keyId ||
      h.count !== count ||
      h.index !== i ||
      h.slots !== slots ||
      h.payloadBytes !== payload
    ) {
      throw new HeFormatError(
        'corrupt',
        `Ciphertext frame ${i} of ${count} does not match the others (kind, preset, key, position, size); the bytes are damaged, ${kind === 'update' ? 're-encrypt the update' : 'download the aggregate again'}.`,
      );
    }
    const p = at + FRAME_HEADER_BYTES;
    const bad = (what: string) =>
      new HeFormatError(
        'corrupt',
        kind === 'update'
          ? `Ciphertext ${i} is not a well-formed SEAL ciphertext for this preset (${what}); the bytes are damaged, re-encrypt the update.`
          : `Aggregate ciphertext ${i} is damaged (${what}); download the aggregate again.`,
      );
    if (template) {
      const t = template;
      for (let j = 0; j < t.head.length; j++) if (bytes[p + j] !== t.head[j]) throw bad(`header byte ${j}`);
      if (t.trailer) {
        const tat = p + DATA_OFFSET + 8 * t.coefficients;
        for (let j = 0; j < t.trailer.length; j++)
          if (bytes[tat + j] !== t.trailer[j]) throw bad('seed header');
      }
    } else {
      const v = new DataView(bytes.buffer, bytes.byteOffset + p, AGGREGATE_META_BYTES);
      if (v.getUint32(0, true) !== contributors) throw bad('contributor count differs from frame 0');
      if (v.getUint32(4, true) !== layout.polys) throw bad('polynomial count');
      if (isSeeded(preset)) {
        for (let k = 1; k < contributors; k++) {
          const s = p + layout.seedAt + k * SEED_BYTES;
          if (compareBytes(bytes, s - SEED_BYTES, bytes, s, SEED_BYTES) >= 0) throw bad('seeds out of order');
        }
      }
    }
    if (scan) {
      const c = firstUnreduced(bytes, p + layout.coefficientsAt, layout, moduli, preset.polyModulusDegree);
      if (c >= 0) throw bad(`coefficient ${c} is not reduced`);
    }
  }
  return first.keyId;
}

/**
 * The index of the first coefficient at `at` (laid out as `layout`) that is not below its level's
 * prime, or -1 when all are reduced.
 */
function firstUnreduced(
  bytes: Uint8Array,
  at: number,
  layout: PayloadLayout,
  moduli: (readonly [number, number])[],
  n: number,
): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset + at, 8 * layout.coefficients);
  for (let poly = 0; poly < layout.polys; poly++) {
    for (let level = 0; level < layout.levels; level++) {
      const [qhi, qlo] = moduli[level]!;
      const base = (poly * layout.levels + level) * n;
      for (let c = base; c < base + n; c++) {
        const lo = v.getUint32(c << 3, true);
        const hi = v.getUint32((c << 3) + 4, true);
        if (hi > qhi || (hi === qhi && lo >= qlo)) return c;
      }
    }
  }
  return -1;
}

/** Compares `len` bytes of `a` at `ai` with `b` at `bi` (negative, zero, positive like Buffer.compare). */
export function compareBytes(a: Uint8Array, ai: number, b: Uint8Array, bi: number, len: number): number {
  for (let j = 0; j < len; j++) {
    const d = a[ai + j]! - b[bi + j]!;
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The fixed bytes of a SEAL ciphertext serialisation under `preset`: `fresh` as sites upload them
 * (seeded for secret-key presets: head, c0, trailer, seed), `full` with both polynomials.
 */
export interface SealTemplate {
  head: Uint8Array;
  coefficients: number;
  /** The PRNG-info bytes between c0 and the seed (seeded only). */
  trailer: Uint8Array | undefined;
  /** Total bytes of the serialisation. */
  bytes: number;
}

const templates = new Map<string, SealTemplate>();

/** See {@link SealTemplate}. */
export function sealTemplate(preset: HePreset, form: 'fresh' | 'full'): SealTemplate {
  const key = `${preset.name}/${preset.encryption}/${form}`;
  const cached = templates.get(key);
  if (cached) return cached;
  const n = preset.polyModulusDegree;
  const levels = dataModuli(preset).length;
  const seeded = form === 'fresh' && isSeeded(preset);
  const polys = seeded ? 1 : 2;
  const coefficients = polys * n * levels;
  const total = form === 'fresh' ? preset.updateCiphertextBytes : preset.fullCiphertextBytes;
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
  const t: SealTemplate = { head, coefficients, trailer, bytes: total };
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

function hex32(hex: string): Uint8Array {
  const b = Buffer.from(hex, 'hex');
  if (b.length !== 32) throw new HeFormatError('corrupt', `expected 32 bytes of hex, got ${b.length}`);
  return b;
}
