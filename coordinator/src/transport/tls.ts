/**
 * gRPC TLS credentials for the coordinator (server) and its clients, from PEM strings.
 *
 * The server requests a client certificate on every handshake but does not require one: a site has
 * no certificate until it enrols, and enrolment runs over the same port. Node's TLS layer then
 * accepts any certificate or none, and grpc-js exposes a peer certificate to handlers
 * (`call.getAuthContext().sslPeerCertificate`) only when the handshake verified it against our CA.
 * Authorisation is never left to the handshake: every handler that needs an identity calls
 * `identifyPeer` (through `Authenticator`), which checks the chain, dates and role itself.
 */
import { type ChannelCredentials, credentials, experimental, type ServerCredentials } from '@grpc/grpc-js';

/** PEM material for {@link createServerCredentials}. */
export interface ServerTlsOptions {
  /** The federation CA; client certificates are verified against it. */
  caCertPem: string;
  /** The coordinator's server certificate (role `coordinator`) and its private key. */
  certPem: string;
  keyPem: string;
  /**
   * Refuse handshakes without a CA-verified client certificate. Default false, so that sites can
   * enrol; leave it false on any port that serves `Enrol`.
   */
  requireClientCertificate?: boolean;
}

/** PEM material for {@link createClientCredentials}; pass both or neither of `certPem` and `keyPem`. */
export type ClientTlsOptions =
  | { caCertPem: string; certPem?: undefined; keyPem?: undefined }
  | { caCertPem: string; certPem: string; keyPem: string };

/** PEM material for {@link staticCertificateProvider}: a CA, an identity (certificate and key), or both. */
export type StaticCertificates = { caCertPem?: string } & (
  | { certPem?: undefined; keyPem?: undefined }
  | { certPem: string; keyPem: string }
);

/**
 * A grpc-js `CertificateProvider` that always serves the same CA and/or identity certificate.
 *
 * Updates are delivered on the next tick, never synchronously: grpc-js subscribes to the provider
 * before it registers the watcher that applies updates to the listening socket, so a synchronous
 * call would be lost and the server would drop every connection as "credentials not loaded"
 * (`FileWatcherCertificateProvider` defers the same way).
 */
export function staticCertificateProvider(certs: StaticCertificates): experimental.CertificateProvider {
  const ca: experimental.CaCertificateUpdate | null =
    certs.caCertPem === undefined ? null : { caCertificate: Buffer.from(certs.caCertPem) };
  const identity: experimental.IdentityCertificateUpdate | null =
    certs.certPem === undefined || certs.keyPem === undefined
      ? null
      : { certificate: Buffer.from(certs.certPem), privateKey: Buffer.from(certs.keyPem) };
  const caListeners = new Set<experimental.CaCertificateUpdateListener>();
  const identityListeners = new Set<experimental.IdentityCertificateUpdateListener>();
  return {
    addCaCertificateListener(listener) {
      caListeners.add(listener);
      process.nextTick(() => {
        if (caListeners.has(listener)) listener(ca);
      });
    },
    removeCaCertificateListener(listener) {
      caListeners.delete(listener);
    },
    addIdentityCertificateListener(listener) {
      identityListeners.add(listener);
      process.nextTick(() => {
        if (identityListeners.has(listener)) listener(identity);
      });
    },
    removeIdentityCertificateListener(listener) {
      identityListeners.delete(listener);
    },
  };
}

/**
 * Server credentials that present the coordinator certificate and request (by default without
 * requiring) a client certificate issued by the federation CA. See the module comment for why
 * handlers must still call `identifyPeer`.
 */
export function createServerCredentials(opts: ServerTlsOptions): ServerCredentials {
  // grpc-js 1.14 names these parameters (ca, identity) in its typings, but the implementation reads
  // them as (identity, ca): the identity provider goes first.
  return experimental.createCertificateProviderServerCredentials(
    staticCertificateProvider({ certPem: opts.certPem, keyPem: opts.keyPem }),
    staticCertificateProvider({ caCertPem: opts.caCertPem }),
    opts.requireClientCertificate ?? false,
  );
}

/**
 * Channel credentials that trust only the federation CA (not the system roots) and, when given,
 * present a client certificate.
 */
export function createClientCredentials(opts: ClientTlsOptions): ChannelCredentials {
  return credentials.createSsl(
    Buffer.from(opts.caCertPem),
    opts.keyPem === undefined ? null : Buffer.from(opts.keyPem),
    opts.certPem === undefined ? null : Buffer.from(opts.certPem),
  );
}
