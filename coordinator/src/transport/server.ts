import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import {
  AuditServiceService,
  OperatorServiceService,
  PROTO_FILES,
  PROTO_ROOT,
  SiteServiceService,
} from '@radfed/proto';
import type { Logger } from '@radfed/shared';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { AuditServiceDeps } from './audit-service.js';
import { auditService } from './audit-service.js';
import type { OperatorServiceDeps } from './operator-service.js';
import { operatorService } from './operator-service.js';
import type { SiteServiceDeps } from './site-service.js';
import { siteService } from './site-service.js';
import { createServerCredentials } from './tls.js';

export interface GrpcServerOptions {
  host: string;
  port: number;
  tls: { caCertPem: string; certPem: string; keyPem: string };
  maxMessageBytes: number;
  log: Logger;
  site: SiteServiceDeps;
  operator: OperatorServiceDeps;
  audit: AuditServiceDeps;
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
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  server.addService(SiteServiceService, siteService(o.site));
  server.addService(OperatorServiceService, operatorService(o.operator));
  server.addService(AuditServiceService, auditService(o.audit));
  const health = new HealthImplementation({
    '': 'SERVING',
    ...Object.fromEntries(SERVICES.map((s) => [s, 'SERVING'])),
  });
  health.addToServer(server);
  const definition = loadSync([...PROTO_FILES, healthProtoPath], {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: String,
  });
  new ReflectionService(definition).addToServer(server);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${o.host}:${o.port}`, createServerCredentials(o.tls), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  o.log.info(`coordinator listening on ${o.host}:${port}`, { port });
  return {
    port,
    health,
    shutdown: async (graceMs) => {
      health.setStatus('', 'NOT_SERVING');
      for (const s of SERVICES) health.setStatus(s, 'NOT_SERVING');
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
    },
  };
}
