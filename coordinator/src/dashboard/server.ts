/**
 * The dashboard's web server: bound to 127.0.0.1 only, serving the built UI (coordinator/dashboard-ui/
 * dist, no CDN) and a small JSON + server-sent-events API over a {@link DashboardSource}. Like
 * Jupyter it admits only requests that carry its random session token: in the URL it prints (which
 * sets a cookie and redirects to the bare URL) or in that cookie. Requests whose Host is not this
 * loopback address are refused too, so another web page cannot reach it by DNS rebinding.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { ConfigError } from '../errors.js';
import { DashboardError, type DashboardSource, type LiveEvent } from './source.js';

/** Where the built UI lives (Vite's output, committed): `pnpm --filter @radfed/dashboard-ui build`. */
export const DASHBOARD_UI_DIR = join(import.meta.dirname, '../../dashboard-ui/dist');

const COOKIE = 'radfed_dashboard';
const HOST = '127.0.0.1';
/** Comment lines that keep an idle event stream open through proxies and detect a gone page. */
const KEEPALIVE_MS = 15_000;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

export interface DashboardServerOptions {
  source: DashboardSource;
  /** 0 for any free port. */
  port: number;
  /** Default: 24 random bytes, base64url. */
  token?: string;
  uiDir?: string;
}

export interface DashboardServer {
  /** The URL to open, token included. */
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

/**
 * Starts the dashboard server.
 *
 * @throws ConfigError when the port is in use or may not be bound.
 */
export async function startDashboardServer(opts: DashboardServerOptions): Promise<DashboardServer> {
  const token = opts.token ?? randomBytes(24).toString('base64url');
  const uiDir = opts.uiDir ?? DASHBOARD_UI_DIR;
  const streams = new Set<AbortController>();
  let port = opts.port;
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: `The dashboard failed: ${(err as Error).message}` });
      else res.end();
    });
  });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    const url = new URL(req.url ?? '/', `http://${HOST}:${port}`);
    const host = req.headers.host ?? '';
    if (host !== `${HOST}:${port}` && host !== `localhost:${port}`) {
      return text(res, 403, `Refused: this dashboard answers only at http://${HOST}:${port}/.`);
    }
    const given = url.searchParams.get('token');
    if (given !== null) {
      if (!same(given, token)) return refuse(res);
      // Trade the token in the URL for a cookie, and drop it from the address bar.
      url.searchParams.delete('token');
      res.setHeader('Set-Cookie', `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`);
      res.writeHead(303, { Location: `${url.pathname}${url.search}` });
      return res.end();
    }
    if (!same(cookie(req, COOKIE) ?? '', token)) return refuse(res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'The dashboard only reads.');

    const path = url.pathname;
    if (path.startsWith('/api/')) return api(path.slice(5).split('/').map(decodeURIComponent), req, res);
    return file(res, path === '/' ? 'index.html' : path.slice(1));
  };

  const api = async (parts: string[], req: IncomingMessage, res: ServerResponse) => {
    const { source } = opts;
    try {
      if (parts.length === 1 && parts[0] === 'info') return json(res, 200, source.info());
      if (parts.length === 1 && parts[0] === 'federations') return json(res, 200, await source.federations());
      if (parts.length === 2 && parts[0] === 'federations')
        return json(res, 200, await source.federation(parts[1]!));
      if (parts.length === 3 && parts[0] === 'federations' && parts[2] === 'events') {
        if (!source.watch) throw new DashboardError(404, 'An audit export has no live rounds.');
        return events(parts[1]!, req, res);
      }
      if (parts.length === 1 && parts[0] === 'audit') {
        if (!source.audit)
          throw new DashboardError(
            404,
            'The ledger view is for audit exports: `radfed audit dashboard FILE`.',
          );
        return json(res, 200, await source.audit());
      }
      throw new DashboardError(404, `No such dashboard API: /api/${parts.join('/')}`);
    } catch (err) {
      if (err instanceof DashboardError) return json(res, err.status, { error: err.message });
      throw err;
    }
  };

  const events = (id: string, req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
    });
    // The browser's EventSource reconnects by itself after this many ms when the server goes away.
    res.write('retry: 1000\n\n');
    const ac = new AbortController();
    streams.add(ac);
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    const end = () => {
      clearInterval(keepalive);
      streams.delete(ac);
      ac.abort();
    };
    req.on('close', end);
    ac.signal.addEventListener('abort', () => res.end());
    opts.source.watch!(
      id,
      (e: LiveEvent) => {
        if (!ac.signal.aborted) res.write(`event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
      },
      ac.signal,
    );
  };

  const file = async (res: ServerResponse, rel: string) => {
    const path = normalize(join(uiDir, rel));
    if (!path.startsWith(uiDir)) return text(res, 404, 'Not found.');
    let body: Buffer;
    try {
      body = await readFile(path);
    } catch {
      // Unknown paths are the single-page app's routes.
      if (extname(rel)) return text(res, 404, `Not found: /${rel}`);
      try {
        body = await readFile(join(uiDir, 'index.html'));
      } catch {
        return text(
          res,
          500,
          `The dashboard's UI is not built (${uiDir} is missing); run pnpm --filter @radfed/dashboard-ui build.`,
        );
      }
      rel = 'index.html';
    }
    res.writeHead(200, {
      'Content-Type': TYPES[extname(rel)] ?? 'application/octet-stream',
      'Cache-Control': rel === 'index.html' ? 'no-store' : 'max-age=3600',
      'Content-Security-Policy':
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'",
    });
    res.end(body);
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE')
        reject(
          new ConfigError(
            `Port ${opts.port} on ${HOST} is in use; choose another with --port, or --port 0 for any free one.`,
            { cause: err },
          ),
        );
      else if (err.code === 'EACCES')
        reject(new ConfigError(`May not listen on port ${opts.port}; choose one above 1023 with --port.`));
      else reject(err);
    });
    server.listen(opts.port, HOST, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://${HOST}:${port}/?token=${token}`,
    port,
    token,
    close: async () => {
      for (const ac of streams) ac.abort();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      opts.source.close();
    },
  };
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

function refuse(res: ServerResponse) {
  text(
    res,
    403,
    'Refused: this dashboard needs its session token. Open the URL that `radfed dashboard` printed (it ends in ?token=...).',
  );
}

function text(res: ServerResponse, status: number, body: string) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(`${body}\n`);
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}
