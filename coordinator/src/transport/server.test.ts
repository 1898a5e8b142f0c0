/**
 * Connection limits of the coordinator's gRPC server, with real sockets on 127.0.0.1: silent TCP,
 * TLS without the HTTP/2 preface, a peer that stops answering keepalive pings, an idle connection,
 * the connection cap and the per-connection stream cap. The services get no dependencies: no call
 * here reaches a RadFed handler (health answers from its own state).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { type DevPki, initDevPki, silentLogger } from '@radfed/shared';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startGrpcServer, type TransportLimits } from './server.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** An empty SETTINGS frame: length 0, type 4, no flags, stream 0. */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
const HOUR = 3_600_000;

const relaxed: TransportLimits = {
  handshakeTimeoutMs: HOUR,
  keepaliveMs: HOUR,
  keepaliveTimeoutMs: HOUR,
  idleConnectionMs: HOUR,
  maxConnections: 1000,
  maxConcurrentStreams: 100,
};

describe('transport limits', () => {
  let dir: string;
  let pki: DevPki;
  const servers: RunningServer[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'radfed-limits-'));
    pki = await initDevPki(join(dir, 'pki'));
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.shutdown(0)));
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async (limits: Partial<TransportLimits>) => {
    const deps = { log: silentLogger } as never;
    const server = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      tls: { caCertPem: pki.ca.certPem, certPem: pki.coordinator.certPem, keyPem: pki.coordinator.keyPem },
      maxMessageBytes: 1 << 20,
      limits: { ...relaxed, ...limits },
      log: silentLogger,
      site: deps,
      operator: deps,
      audit: deps,
    });
    servers.push(server);
    return server.port;
  };

  const tlsConnect = (port: number) =>
    tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: pki.ca.certPem,
      ALPNProtocols: ['h2'],
    });
  const closed = (s: net.Socket) => new Promise<void>((resolve) => s.once('close', () => resolve()));
  const secured = (s: tls.TLSSocket) =>
    new Promise<void>((resolve) => s.once('secureConnect', () => resolve()));

  it('closes raw TCP connections that never send a byte after the handshake timeout', async () => {
    const port = await start({ handshakeTimeoutMs: 200 });
    const sockets = Array.from({ length: 20 }, () => net.connect(port, '127.0.0.1').on('error', () => {}));
    await Promise.all(sockets.map(closed));
    expect(sockets.every((s) => s.destroyed)).toBe(true);
  });

  it('closes a TLS connection that never sends the HTTP/2 preface', async () => {
    const port = await start({ handshakeTimeoutMs: 200 });
    const socket = tlsConnect(port).on('error', () => {});
    await secured(socket);
    expect(socket.alpnProtocol).toBe('h2');
    await closed(socket);
  });

  it('closes a connection that stops answering keepalive pings', async () => {
    const port = await start({ keepaliveMs: 100, keepaliveTimeoutMs: 100 });
    const socket = tlsConnect(port).on('error', () => {});
    await secured(socket);
    socket.write(Buffer.concat([PREFACE, EMPTY_SETTINGS]));
    const frameTypes: number[] = [];
    let buffered = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      buffered = Buffer.concat([buffered, data]);
      while (buffered.length >= 9) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) break;
        frameTypes.push(buffered[3]!);
        buffered = buffered.subarray(9 + length);
      }
    });
    await closed(socket);
    expect(frameTypes).toContain(0x6); // the server pinged; nobody answered; it hung up
  });

  it('closes a connection with no call in flight after the idle limit', async () => {
    const port = await start({ idleConnectionMs: 200 });
    const def = grpc.loadPackageDefinition(loadSync(healthProtoPath, { enums: String }));
    type HealthClient = grpc.Client & {
      Check(req: { service: string }, cb: (err: Error | null, res: { status: string }) => void): void;
    };
    const Health = (def.grpc as never as { health: { v1: { Health: grpc.ServiceClientConstructor } } }).health
      .v1.Health;
    const client = new Health(
      `localhost:${port}`,
      grpc.credentials.createSsl(Buffer.from(pki.ca.certPem)),
    ) as unknown as HealthClient;
    const res = await new Promise<{ status: string }>((resolve, reject) =>
      client.Check({ service: '' }, (err, r) => (err ? reject(err) : resolve(r))),
    );
    expect(res.status).toBe('SERVING');
    const channel = client.getChannel();
    // The server's GOAWAY after the idle limit sends the channel back to IDLE.
    while (channel.getConnectivityState(false) !== grpc.connectivityState.IDLE) {
      const now = channel.getConnectivityState(false);
      await new Promise<void>((resolve) =>
        channel.watchConnectivityState(now, Date.now() + HOUR, () => resolve()),
      );
    }
    client.close();
  });

  it('refuses connections past the connection cap', async () => {
    const port = await start({ maxConnections: 2 });
    const held = [tlsConnect(port), tlsConnect(port)];
    await Promise.all(held.map(secured));
    const third = tlsConnect(port);
    let thirdSecured = false;
    third.on('secureConnect', () => {
      thirdSecured = true;
    });
    third.on('error', () => {});
    await closed(third);
    expect(thirdSecured).toBe(false);
    for (const s of held) s.destroy();
  });

  it('announces the concurrent-stream cap in its HTTP/2 settings', async () => {
    const port = await start({ maxConcurrentStreams: 3 });
    const session = http2.connect(`https://localhost:${port}`, { ca: pki.ca.certPem });
    const settings = await new Promise<http2.Settings>((resolve, reject) => {
      session.once('remoteSettings', resolve);
      session.once('error', reject);
    });
    expect(settings.maxConcurrentStreams).toBe(3);
    session.close();
  });
});
