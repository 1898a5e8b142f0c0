import net, { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { type DashboardServer, startDashboardServer } from './server.js';
import { DashboardError, type DashboardSource } from './source.js';

const source: DashboardSource = {
  info: () => ({ mode: 'audit', title: 'test' }),
  federations: async () => [],
  federation: async (id) => {
    throw new DashboardError(404, `No federation "${id}" exists.`);
  },
  close: () => {},
};

describe('the dashboard server', () => {
  let server: DashboardServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('admits only the session token, trading the URL token for a cookie', async () => {
    server = await startDashboardServer({ source, port: 0 });
    const origin = `http://127.0.0.1:${server.port}`;
    expect((await fetch(`${origin}/api/info`)).status).toBe(403);
    expect((await fetch(`${origin}/?token=nope`, { redirect: 'manual' })).status).toBe(403);
    const first = await fetch(server.url, { redirect: 'manual' });
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/');
    const cookie = first.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly; SameSite=Strict/);
    const headers = { cookie: cookie.split(';')[0]! };
    expect(await (await fetch(`${origin}/api/info`, { headers })).json()).toEqual({
      mode: 'audit',
      title: 'test',
    });
    // The committed UI build is served, from the package, with a same-origin policy.
    const page = await fetch(`${origin}/`, { headers });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await page.text();
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeDefined();
    expect((await fetch(`${origin}${asset}`, { headers })).status).toBe(200);
    const missing = await fetch(`${origin}/api/federations/nope`, { headers });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'No federation "nope" exists.' });
    expect((await fetch(`${origin}/api/federations/x/events`, { headers })).status).toBe(404);
  });

  it('refuses a Host other than its loopback address (DNS rebinding)', async () => {
    server = await startDashboardServer({ source, port: 0, token: 't' });
    const res = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(server!.port, '127.0.0.1', () =>
        sock.write(
          `GET /?token=t HTTP/1.1\r\nHost: evil.example:${server!.port}\r\nConnection: close\r\n\r\n`,
        ),
      );
      let data = '';
      sock.on('data', (d: Buffer) => (data += d.toString()));
      sock.on('end', () => resolve(data));
      sock.on('error', reject);
    });
    expect(res).toMatch(/^HTTP\/1\.1 403/);
  });

  it('says which port is in use', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as { port: number }).port;
    try {
      const err = await startDashboardServer({ source, port }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(
        `Port ${port} on 127.0.0.1 is in use; choose another with --port`,
      );
    } finally {
      taken.close();
    }
  });
});
