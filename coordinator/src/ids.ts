import { randomBytes } from 'node:crypto';

/** A short random identifier with a type prefix, e.g. `rd_3f9a1c0b7e2d`. */
export function newId(prefix: 'fd' | 'st' | 'rd'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}
