/**
 * Stock gRPC tooling works against the coordinator: the standard health service answers without a
 * client certificate, server reflection lists the RadFed services, and health flips to
 * NOT_SERVING while the coordinator drains.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { Coordinator } from '@radfed/coordinator';
import { channelCredentials } from '@radfed/proto';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessCoordinator, startInProcessCoordinator } from '../support/coordinator.js';

const require = createRequire(import.meta.url);
/** The buf CLI from npm (@bufbuild/buf, a dev dependency of the proto package). */
const BUF = join(import.meta.dirname, '../../proto/node_modules/.bin/buf');
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
  let coordinator: InProcessCoordinator;
  let coord: Coordinator;
  let creds: grpc.ChannelCredentials;
  let address: string;
  let pkiDir: string;

  beforeAll(async () => {
    coordinator = await startInProcessCoordinator('eco');
    ({ coord, address } = coordinator);
    pkiDir = coordinator.config.pkiDir;
    creds = channelCredentials({ caCertPem: coordinator.caPem });
  });

  afterAll(async () => {
    await coordinator?.stop();
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

  it('buf curl calls OperatorService and health through reflection alone, with no .proto files', async () => {
    // Run from an empty directory so buf can find no schema but the server's.
    const cwd = mkdtempSync(join(tmpdir(), 'radfed-buf-'));
    const curl = (path: string, body: object, withCert: boolean) =>
      new Promise<unknown>((resolve, reject) =>
        execFile(
          BUF,
          [
            'curl',
            '--protocol',
            'grpc',
            '--cacert',
            join(pkiDir, 'ca.crt'),
            ...(withCert
              ? ['--cert', join(pkiDir, 'operator.crt'), '--key', join(pkiDir, 'operator.key')]
              : []),
            '-d',
            JSON.stringify(body),
            `https://localhost:${coord.port}${path}`,
          ],
          { cwd },
          (err, stdout, stderr) =>
            err ? reject(new Error(`buf curl ${path}: ${stderr}`)) : resolve(JSON.parse(stdout)),
        ),
      );
    try {
      expect(await curl('/grpc.health.v1.Health/Check', {}, false)).toEqual({ status: 'SERVING' });
      const created = (await curl(
        '/radfed.v1.OperatorService/CreateFederation',
        { name: 'via-buf' },
        true,
      )) as {
        federation: { name: string; modelSpec: { architecture: string } };
      };
      expect(created.federation).toMatchObject({ name: 'via-buf', modelSpec: { architecture: 'conv4' } });
      const listed = (await curl('/radfed.v1.OperatorService/ListFederations', {}, true)) as {
        federations: { name: string }[];
      };
      expect(listed.federations.map((f) => f.name)).toContain('via-buf');
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
