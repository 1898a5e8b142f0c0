import * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import {
  AuditServiceService,
  OperatorServiceService,
  reflectionFileDescriptors,
  SiteServiceService,
} from '@radfed/proto';
import type { Logger } from '@radfed/shared';
import { HealthImplementation } from 'grpc-health-check';
import type { AuditServiceDeps } from './audit-service.js';
import { auditService } from './audit-service.js';
import { guardDecoding, malformedRequestInterceptor } from './decoding.js';
import { listenTls } from './listener.js';
import type { OperatorServiceDeps } from './operator-service.js';
import { operatorService } from './operator-service.js';
import type { SiteServiceDeps } from './site-service.js';
import { siteService } from './site-service.js';

export interface GrpcServerOptions {
  host: string;
  port: number;
  tls: { caCertPem: string; certPem: string; keyPem: string };
  maxMessageBytes: number;
  limits: TransportLimits;
  log: Logger;
  site: SiteServiceDeps;
  operator: OperatorServiceDeps;
  audit: AuditServiceDeps;
}

/** Connection limits, in milliseconds and counts; the configuration table documents each default. */
export interface TransportLimits {
  /** The TLS handshake, and then the HTTP/2 preface, must each arrive within this. */
  handshakeTimeoutMs: number;
  /** Interval between keepalive pings the server sends on each connection. */
  keepaliveMs: number;
  /** How long a keepalive ping may go unanswered before the connection is dropped. */
  keepaliveTimeoutMs: number;
  /** A connection with no call in flight for this long is closed (GOAWAY). */
  idleConnectionMs: number;
  /** Most open connections at once. */
  maxConnections: number;
  /** Most calls in flight on one connection. */
  maxConcurrentStreams: number;
}

export interface RunningServer {
  port: number;
  health: HealthImplementation;
  /** Stops taking calls and waits up to `graceMs` for in-flight ones, then forces the rest closed. */
  shutdown(graceMs: number): Promise<void>;
}

const SERVICES = ['radfed.v1.SiteService', 'radfed.v1.OperatorService', 'radfed.v1.AuditService'];

/**
 * Starts the coordinator's gRPC server over TLS: the three radfed.v1 services, the standard health
 * service (`grpc.health.v1`) and server reflection, so grpcurl, `buf curl` and Kubernetes gRPC
 * probes work against it.
 */
export async function startGrpcServer(o: GrpcServerOptions): Promise<RunningServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': o.maxMessageBytes,
    'grpc.max_send_message_length': o.maxMessageBytes,
    'grpc.keepalive_time_ms': o.limits.keepaliveMs,
    'grpc.keepalive_timeout_ms': o.limits.keepaliveTimeoutMs,
    'grpc.max_connection_idle_ms': o.limits.idleConnectionMs,
    'grpc.max_concurrent_streams': o.limits.maxConcurrentStreams,
    interceptors: [malformedRequestInterceptor],
  });
  server.addService(guardDecoding(SiteServiceService), siteService(o.site));
  server.addService(guardDecoding(OperatorServiceService), operatorService(o.operator));
  server.addService(guardDecoding(AuditServiceService), auditService(o.audit));
  const health = new HealthImplementation({
    '': 'SERVING',
    ...Object.fromEntries(SERVICES.map((s) => [s, 'SERVING'])),
  });
  health.addToServer(server);
  addReflection(server);

  // TLS is terminated by our listener (handshake and preface deadlines, connection cap); grpc-js
  // gets the decrypted socket and still reads the verified peer certificate from it.
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const listener = await listenTls({
    host: o.host,
    port: o.port,
    tls: o.tls,
    handshakeTimeoutMs: o.limits.handshakeTimeoutMs,
    maxConnections: o.limits.maxConnections,
    onConnection: (socket) => injector.injectConnection(socket),
    log: o.log,
  });
  const port = listener.port;
  o.log.info(`coordinator listening on ${o.host}:${port}`, { port });
  return {
    port,
    health,
    shutdown: async (graceMs) => {
      health.setStatus('', 'NOT_SERVING');
      for (const s of SERVICES) health.setStatus(s, 'NOT_SERVING');
      // Stop accepting first; the listener's close resolves once every connection has ended.
      const closed = listener.close();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      listener.destroyAll();
      await closed;
    },
  };
}

/**
 * Server reflection over the radfed.v1 services and health, so grpcurl and `buf curl` need no .proto
 * files. It serves the descriptors `buf build` compiled: proto-loader's own are incomplete (relative
 * type names, misnamed map entries, no imports), which stock tools refuse.
 */
function addReflection(server: grpc.Server): void {
  const files = reflectionFileDescriptors().map((bytes) => Buffer.from(bytes));
  // @grpc/reflection indexes whatever `fileDescriptorProtos` the definition's entries carry.
  const definition = { 'radfed.v1': { fileDescriptorProtos: files } } as unknown as PackageDefinition;
  new ReflectionService(definition).addToServer(server);
}
