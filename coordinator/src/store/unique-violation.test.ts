import { describe, expect, it } from 'vitest';
import { onUniqueViolation, uniqueViolation } from './unique-violation.js';

describe('unique violations', () => {
  const pgError = Object.assign(new Error('duplicate key value'), {
    code: '23505',
    constraint: 'sites_federation_name',
  });

  it('finds the constraint through the wrapping a query builder adds', () => {
    expect(uniqueViolation(pgError)).toBe('sites_federation_name');
    expect(uniqueViolation(new Error('Failed query: insert ...', { cause: pgError }))).toBe(
      'sites_federation_name',
    );
    expect(uniqueViolation(Object.assign(new Error('x'), { code: '23505' }))).toBe('');
    expect(uniqueViolation(Object.assign(new Error('x'), { code: '23503' }))).toBeUndefined();
    expect(uniqueViolation('not an error')).toBeUndefined();
  });

  it('rethrows only a violation of the named constraint as the domain error', () => {
    const rename = onUniqueViolation('sites_federation_name', () => new RangeError('taken'));
    expect(() => rename(pgError)).toThrow(RangeError);
    const other = new TypeError('other');
    expect(() => rename(other)).toThrow(other);
  });
});
