/**
 * Recognises a unique-constraint violation (PostgreSQL SQLSTATE 23505) from either driver, through
 * drizzle's wrapping: a write that lost a race against a concurrent one. Callers turn it into the
 * domain error the race means (a name taken, a change that collided), never an internal error.
 */

/** Constraint names from the schema that callers map to their own errors. */
export const UNIQUE = {
  federationName: 'federations_name_unique',
  siteName: 'sites_federation_name',
  roundNumber: 'rounds_federation_number',
} as const;

/**
 * The violated constraint's name when `err` (or an error in its `cause` chain) is a unique
 * violation; `''` when the driver did not name it; undefined for any other error.
 */
export function uniqueViolation(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    const { code, constraint, cause } = e as { code?: unknown; constraint?: unknown; cause?: unknown };
    if (code === '23505') return typeof constraint === 'string' ? constraint : '';
    e = cause;
  }
  return undefined;
}

/** A `.catch` handler: rethrows a violation of `constraint` as `toError(cause)`, anything else as it is. */
export function onUniqueViolation(constraint: string, toError: (cause: unknown) => Error) {
  return (err: unknown): never => {
    throw uniqueViolation(err) === constraint ? toError(err) : err;
  };
}
