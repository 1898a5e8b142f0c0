/**
 * The coordinator's TLS listener. It owns the socket so that connections which never become a gRPC
 * client cost nothing for long: a connection must finish its TLS handshake, and then send the
 * HTTP/2 client preface, each within the handshake timeout, or it is closed. Only connections that
 * have done both are handed to grpc-js (through its connection injector), which then applies the
 * keepalive, idle and concurrent-stream limits.
 *
 * Client certificates are requested but not required (see tls.ts): grpc-js reports a peer
 * certificate to handlers only when `authorized` is true, i.e. the chain verified against our CA.
 */
import type { Socket } from 'node:net';
import * as tls from 'node:tls';
import type { Logger } from '@radfed/shared';
import type { ServerTlsOptions } from './tls.js';

/** Every HTTP/2 connection opens with these 24 bytes (RFC 9113 section 3.4). */
const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface ListenerOptions {
  host: string;
  port: number;
  tls: ServerTlsOptions;
  /** Milliseconds for the TLS handshake, and again for the HTTP/2 preface after it. */
  handshakeTimeoutMs: number;
  /** Most open connections at once (handshaking or not); further ones are closed at once. */
  maxConnections: number;
  /** Receives each connection that completed TLS and sent the HTTP/2 preface, preface unread. */
  onConnection(socket: tls.TLSSocket): void;
  log: Logger;
}

export interface TlsListener {
  port: number;
  /**
   * Stops accepting and closes connections that have not reached gRPC yet; resolves once every
   * connection has ended.
   */
  close(): Promise<void>;
  /** Destroys every connection still open (after gRPC's own shutdown grace). */
  destroyAll(): void;
}

export async function listenTls(o: ListenerOptions): Promise<TlsListener> {
  const pending = new Set<tls.TLSSocket>();
  const open = new Set<Socket>();
  const server = tls.createServer({
    cert: o.tls.certPem,
    key: o.tls.keyPem,
    ca: o.tls.caCertPem,
    requestCert: true,
    rejectUnauthorized: o.tls.requireClientCertificate ?? false,
    ALPNProtocols: ['h2'],
    handshakeTimeout: o.handshakeTimeoutMs,
  });
  server.maxConnections = o.maxConnections;
  server.on('connection', (raw: Socket) => {
    open.add(raw);
    raw.once('close', () => open.delete(raw));
  });
  server.on('drop', (d) =>
    o.log.warn(`refused a connection: ${o.maxConnections} connections are open (maxConnections)`, {
      remote: d?.remoteAddress,
    }),
  );
  // Failed or timed-out handshakes (a listener here means Node leaves the socket to us).
  server.on('tlsClientError', (err, socket) => {
    o.log.debug('TLS handshake failed', { remote: socket.remoteAddress, reason: err.message });
    socket.destroy();
  });
  server.on('secureConnection', (socket) => {
    if (socket.alpnProtocol !== 'h2') {
      o.log.debug('closed a TLS connection that did not negotiate HTTP/2', { remote: socket.remoteAddress });
      socket.destroy();
      return;
    }
    pending.add(socket);
    const done = () => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('close', done);
      pending.delete(socket);
    };
    const timer = setTimeout(() => {
      o.log.debug('closed a connection that sent no HTTP/2 preface in time', {
        remote: socket.remoteAddress,
      });
      done();
      socket.destroy();
    }, o.handshakeTimeoutMs);
    const onReadable = () => {
      const preface = socket.read(HTTP2_PREFACE.length) as Buffer | null;
      if (preface === null) {
        // Fewer bytes than the preface so far; a stream that ended short is not HTTP/2.
        if (socket.readableEnded) {
          done();
          socket.destroy();
        }
        return;
      }
      done();
      if (!preface.equals(HTTP2_PREFACE)) {
        o.log.debug('closed a connection that did not speak HTTP/2', { remote: socket.remoteAddress });
        socket.destroy();
        return;
      }
      // Node's HTTP/2 session picks up bytes already read from the socket, so the preface goes back.
      socket.unshift(preface);
      o.onConnection(socket);
    };
    socket.on('error', () => undefined);
    socket.on('close', done);
    socket.on('readable', onReadable);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : o.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of pending) s.destroy();
      }),
    destroyAll: () => {
      for (const s of open) s.destroy();
    },
  };
}
