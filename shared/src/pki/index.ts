/**
 * The federation's X.509 PKI: a CA, role-bearing certificates (`OU=<role>`), site enrolment by CSR,
 * and peer identification for a gRPC server that checks client certificates itself.
 */
export {
  type CertificateAuthority,
  type CreateCertificateAuthorityOptions,
  createCertificateAuthority,
  type IssueCertificateOptions,
  type IssuedCertificate,
  issueCertificate,
  type SubjectAltNames,
} from './ca.js';
export { type CreateCsrOptions, type CreatedCsr, createCsr, type SignCsrOptions, signCsr } from './csr.js';
export { type DevPki, type InitDevPkiOptions, initDevPki, type PemPair } from './dev-pki.js';
export { fingerprint, identifyPeer, type PeerIdentity } from './identify.js';
export { isRole, ROLES, type Role } from './roles.js';
