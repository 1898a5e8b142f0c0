/**
 * The role a certificate grants, carried in its subject as `OU=<role>`:
 * - `site`: a hospital's site agent (client certificate, issued at enrolment from the site's CSR);
 * - `operator`: the consortium operator's admin CLI (client certificate);
 * - `auditor`: the read-only audit CLI (client certificate);
 * - `coordinator`: the coordinator's TLS server certificate.
 */
export type Role = 'site' | 'operator' | 'auditor' | 'coordinator';

/** Every role, in a fixed order. */
export const ROLES: readonly Role[] = ['site', 'operator', 'auditor', 'coordinator'];

/** True when `value` names a known role. */
export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}
