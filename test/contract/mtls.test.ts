/**
 * Mutual TLS over real grpc-js sockets: the coordinator's server credentials request but do not
 * require a client certificate, and handlers identify callers with `identifyPeer`.
 */
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { createClientCredentials, createServerCredentials } from '@radfed/coordinator/testing';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  createCsr,
  identifyPeer,
  issueCertificate,
  signCsr,
  UntrustedPeerError,
} from '@radfed/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** What the probe handler saw: no verified client certificate, or the identity it names. */
type Seen = { anonymous: true } | { anonymous: false; role: string; commonName: string; fingerprint: string };

const bytes = {
  serialize: (value: Buffer): Buffer => value,
  deserialize: (value: Buffer): Buffer => value,
};
const WHO_AM_I = '/radfed.test.v1.Probe/WhoAmI';
const probeService: grpc.ServiceDefinition = {
  whoAmI: {
    path: WHO_AM_I,
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes.serialize,
    requestDeserialize: bytes.deserialize,
    responseSerialize: bytes.serialize,
    responseDeserialize: bytes.deserialize,
  },
};

function probeHandler(caCertPem: string): grpc.handleUnaryCall<Buffer, Buffer> {
  return (call, callback) => {
    const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
    if (raw === undefined) {
      callback(null, Buffer.from(JSON.stringify({ anonymous: true } satisfies Seen)));
      return;
    }
    try {
      const peer = identifyPeer(raw, caCertPem);
      const seen: Seen = {
        anonymous: false,
        role: peer.role,
        commonName: peer.commonName,
        fingerprint: peer.fingerprint,
      };
      callback(null, Buffer.from(JSON.stringify(seen)));
    } catch (error) {
      callback({ code: grpc.status.UNAUTHENTICATED, details: (error as Error).message });
    }
  };
}

async function startServer(
  ca: CertificateAuthority,
  server: { certPem: string; keyPem: string },
  requireClientCertificate = false,
): Promise<{ server: grpc.Server; address: string }> {
  const grpcServer = new grpc.Server();
  grpcServer.addService(probeService, { whoAmI: probeHandler(ca.certPem) });
  const credentials = createServerCredentials({ caCertPem: ca.certPem, ...server, requireClientCertificate });
  const port = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync('localhost:0', credentials, (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  // A host name, not an IP literal: TLS SNI may not carry an IP address (RFC 6066).
  return { server: grpcServer, address: `localhost:${port}` };
}

async function whoAmI(address: string, credentials: grpc.ChannelCredentials): Promise<Seen> {
  const client = new grpc.Client(address, credentials);
  try {
    const reply = await new Promise<Buffer>((resolve, reject) =>
      client.makeUnaryRequest(
        WHO_AM_I,
        bytes.serialize,
        bytes.deserialize,
        Buffer.alloc(0),
        { deadline: Date.now() + 10_000 },
        (error, value) => (error || value === undefined ? reject(error) : resolve(value)),
      ),
    );
    return JSON.parse(reply.toString('utf8')) as Seen;
  } finally {
    client.close();
  }
}

describe('mutual TLS with optional client certificates', () => {
  let ca: CertificateAuthority;
  let otherCa: CertificateAuthority;
  let coordinator: { certPem: string; keyPem: string };
  let server: grpc.Server;
  let address: string;

  beforeAll(async () => {
    ca = await createCertificateAuthority({ commonName: 'RadFed Federation CA' });
    otherCa = await createCertificateAuthority({ commonName: 'RadFed Federation CA' });
    coordinator = await issueCertificate(ca, {
      commonName: 'coordinator',
      role: 'coordinator',
      subjectAltNames: { dns: ['localhost'], ip: ['127.0.0.1', '::1'] },
    });
    ({ server, address } = await startServer(ca, coordinator));
  });

  afterAll(() => {
    server?.forceShutdown();
  });

  it('refuses plaintext clients', async () => {
    await expect(whoAmI(address, grpc.credentials.createInsecure())).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
    });
  });

  it('serves a client without a certificate over TLS, with no peer certificate', async () => {
    expect(await whoAmI(address, createClientCredentials({ caCertPem: ca.certPem }))).toEqual({
      anonymous: true,
    });
  });

  it('identifies a site by the certificate issued from its CSR', async () => {
    const { csrPem, keyPem } = await createCsr({ commonName: 'hospital-a' });
    const certPem = await signCsr(ca, csrPem, { siteId: 'site-a' });
    const seen = await whoAmI(address, createClientCredentials({ caCertPem: ca.certPem, certPem, keyPem }));
    expect(seen).toEqual({
      anonymous: false,
      role: 'site',
      commonName: 'site-a',
      fingerprint: new X509Certificate(certPem).fingerprint256.replaceAll(':', '').toLowerCase(),
    });
  });

  it('identifies an operator', async () => {
    const operator = await issueCertificate(ca, { commonName: 'operator', role: 'operator' });
    const seen = await whoAmI(address, createClientCredentials({ caCertPem: ca.certPem, ...operator }));
    expect(seen).toMatchObject({ anonymous: false, role: 'operator', commonName: 'operator' });
  });

  it('never identifies a client whose certificate comes from another CA', async () => {
    const foreign = await issueCertificate(otherCa, { commonName: 'site-a', role: 'site' });
    // The handshake completes (the certificate is optional), but grpc-js withholds a certificate the
    // handshake did not verify, so the caller is anonymous: it gains nothing by presenting it.
    const seen = await whoAmI(address, createClientCredentials({ caCertPem: ca.certPem, ...foreign }));
    expect(seen).toEqual({ anonymous: true });
    // And were it ever passed through, identifyPeer refuses it on its own.
    expect(() => identifyPeer(new X509Certificate(foreign.certPem).raw, ca.certPem)).toThrow(
      UntrustedPeerError,
    );
  });

  it('can require a client certificate instead', async () => {
    const strict = await startServer(ca, coordinator, true);
    try {
      await expect(
        whoAmI(strict.address, createClientCredentials({ caCertPem: ca.certPem })),
      ).rejects.toMatchObject({
        code: grpc.status.UNAVAILABLE,
      });
      const auditor = await issueCertificate(ca, { commonName: 'auditor', role: 'auditor' });
      const seen = await whoAmI(
        strict.address,
        createClientCredentials({ caCertPem: ca.certPem, ...auditor }),
      );
      expect(seen).toMatchObject({ anonymous: false, role: 'auditor' });
    } finally {
      strict.server.forceShutdown();
    }
  });

  it('is refused by a client that trusts another CA', async () => {
    await expect(
      whoAmI(address, createClientCredentials({ caCertPem: otherCa.certPem })),
    ).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
    });
  });
});
