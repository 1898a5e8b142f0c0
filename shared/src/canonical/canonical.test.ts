import { describe, expect, it } from 'vitest';
import { CanonicalJsonError } from '../errors.js';
import { canonicalJson, merkleRoot, sha256, sha256Hex } from './canonical.js';

describe('canonicalJson', () => {
  it('does not depend on key insertion order, at any depth', () => {
    const a = { b: 1, a: { z: [1, { y: 2, x: 3 }], c: 'x' } };
    const b = { a: { c: 'x', z: [1, { x: 3, y: 2 }] }, b: 1 };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).toBe('{"a":{"c":"x","z":[1,{"x":3,"y":2}]},"b":1}');
  });

  it('encodes bytes, bigints and dates in their fixed forms and omits undefined members', () => {
    const value = {
      bytes: new Uint8Array([1, 2, 3]),
      buf: Buffer.from('hi'),
      big: 2n ** 70n,
      at: new Date('2025-01-02T03:04:05.678Z'),
      missing: undefined,
    };
    expect(canonicalJson(value)).toBe(
      '{"at":"2025-01-02T03:04:05.678Z","big":"1180591620717411303424","buf":{"$bytes":"aGk="},"bytes":{"$bytes":"AQID"}}',
    );
    expect(canonicalJson({ a: 1, b: undefined })).toBe(canonicalJson({ a: 1 }));
  });

  it('encodes a byte view by its own bytes, not its whole backing buffer', () => {
    const backing = new Uint8Array([9, 1, 2, 9]);
    expect(canonicalJson(backing.subarray(1, 3))).toBe('{"$bytes":"AQI="}');
  });

  it('sorts keys by UTF-16 code unit and escapes strings as JSON does', () => {
    expect(canonicalJson({ b: 1, B: 2, é: 3, '\n': 'a"b' })).toBe('{"\\n":"a\\"b","B":2,"b":1,"é":3}');
  });

  it.each([
    ['NaN', { n: Number.NaN }],
    ['Infinity', [Number.POSITIVE_INFINITY]],
    ['an invalid Date', new Date('nope')],
    ['undefined in an array', [1, undefined]],
    ['a function', { f: () => 1 }],
    ['a Map', new Map()],
    ['a class instance', new (class Point {})()],
    ['the reserved $bytes key', { $bytes: 'AQID' }],
  ])('rejects %s', (_, value) => {
    expect(() => canonicalJson(value)).toThrow(CanonicalJsonError);
  });

  it('rejects cycles but accepts shared references', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(/refers back/);
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });
});

describe('sha256', () => {
  it('hashes strings as UTF-8', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256(Buffer.from('abc', 'utf8')).toString('hex')).toBe(sha256Hex('abc'));
  });
});

describe('merkleRoot', () => {
  const leaves = ['a', 'b', 'c'].map((s) => Buffer.from(s));
  // Computed independently (Python hashlib) from the documented construction.
  it.each([
    [0, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    [1, '022a6979e6dab7aa5ae4c3e5e45f7e977112a7e63593820dbec1ec738a24f93c'],
    [2, 'b137985ff484fb600db93107c77b0365c80d78f5b429ded0fd97361d077999eb'],
    [3, '36642e73c2540ab121e3a6bf9545b0a24982cd830eb13d3cd19de3ce6c021ec1'],
  ])('matches the known vector for %i leaves', (count, hex) => {
    expect(merkleRoot(leaves.slice(0, count)).toString('hex')).toBe(hex);
  });

  it('does not let an inner node pose as a leaf', () => {
    const inner = merkleRoot(leaves.slice(0, 2));
    expect(merkleRoot([inner]).equals(inner)).toBe(false);
  });
});
