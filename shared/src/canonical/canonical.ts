import { createHash } from 'node:crypto';
import { CanonicalJsonError } from '../errors.js';

/** The key that marks encoded bytes; reserved, so no plain object may use it. */
const BYTES_KEY = '$bytes';

/**
 * Encodes `value` as canonical JSON, the byte-exact form that RadFed hashes and signs: object keys
 * sorted by UTF-16 code unit (as RFC 8785), no whitespace, numbers in ECMAScript shortest form.
 * Beyond JSON: a `Uint8Array` (or `Buffer`) becomes `{"$bytes":"<base64>"}`, a `bigint` its decimal
 * string, a `Date` its ISO 8601 string. Object properties whose value is `undefined` are omitted, so
 * an absent optional field and an undefined one encode alike.
 *
 * Security: two values that differ must not share an encoding, or a signature over one would vouch
 * for the other; so anything without one unambiguous form is refused rather than coerced.
 *
 * @throws CanonicalJsonError for a non-finite number, an invalid Date, `undefined` in an array, a
 *   function or symbol, a Map, Set or other class instance, a cycle, or a plain object with a
 *   `$bytes` key.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, new Set(), '$');
}

function encode(value: unknown, ancestors: Set<object>, path: string): string {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value))
        throw new CanonicalJsonError(`${path} is ${value}, which JSON cannot represent`);
      return JSON.stringify(value);
    case 'bigint':
      return JSON.stringify(value.toString());
    case 'object':
      if (value === null) return 'null';
      return encodeObject(value, ancestors, path);
    default:
      throw new CanonicalJsonError(`${path} is a ${typeof value}, which has no canonical JSON form`);
  }
}

function encodeObject(value: object, ancestors: Set<object>, path: string): string {
  if (value instanceof Uint8Array) {
    return `{"${BYTES_KEY}":${JSON.stringify(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'))}}`;
  }
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new CanonicalJsonError(`${path} is an invalid Date`);
    return JSON.stringify(value.toISOString());
  }
  if (ancestors.has(value)) throw new CanonicalJsonError(`${path} refers back to an enclosing value`);
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      const items = value.map((item, i) => {
        if (item === undefined) throw new CanonicalJsonError(`${path}[${i}] is undefined`);
        return encode(item, ancestors, `${path}[${i}]`);
      });
      return `[${items.join(',')}]`;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (proto as { constructor?: { name?: string } }).constructor?.name ?? 'unknown';
      throw new CanonicalJsonError(`${path} is a ${kind} instance; only plain objects are encoded`);
    }
    const record = value as Record<string, unknown>;
    if (Object.hasOwn(record, BYTES_KEY)) {
      throw new CanonicalJsonError(`${path} uses the reserved key "${BYTES_KEY}"`);
    }
    const members: string[] = [];
    // Default sort compares UTF-16 code units, independent of locale.
    for (const key of Object.keys(record).sort()) {
      const member = record[key];
      if (member === undefined) continue;
      members.push(`${JSON.stringify(key)}:${encode(member, ancestors, `${path}.${key}`)}`);
    }
    return `{${members.join(',')}}`;
  } finally {
    ancestors.delete(value);
  }
}

/** SHA-256 of `data`; a string is hashed as its UTF-8 bytes. */
export function sha256(data: Uint8Array | string): Buffer {
  return createHash('sha256').update(data).digest();
}

/** Lower-case hex SHA-256 of `data`; a string is hashed as its UTF-8 bytes. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/**
 * Merkle root over `leaves` with SHA-256: each leaf hashes as `sha256(0x00 || leaf)`, each inner
 * node as `sha256(0x01 || left || right)`; on a level with an odd count the last node is promoted
 * unchanged. An empty list gives `sha256("")`.
 *
 * Security: the distinct leaf and node prefixes (as RFC 6962) stop an inner node from being passed
 * off as a leaf, so no two different leaf lists share a root by reinterpretation.
 */
export function merkleRoot(leaves: readonly Uint8Array[]): Buffer {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  let level = leaves.map((leaf) => sha256(Buffer.concat([LEAF_PREFIX, leaf])));
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const left = level[i]!;
      const right = level[i + 1];
      next.push(right === undefined ? left : sha256(Buffer.concat([NODE_PREFIX, left, right])));
    }
    level = next;
  }
  return level[0]!;
}
