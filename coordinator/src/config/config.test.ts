import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { loadCoordinatorConfig } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'radfed-config-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('coordinator configuration', () => {
  it('applies defaults and derives the PKI and blob directories', () => {
    const c = loadCoordinatorConfig({}, {});
    expect(c).toMatchObject({
      host: '127.0.0.1',
      port: 7443,
      dataDir: '.radfed/coordinator',
      maxMessageBytes: 4 * 1024 * 1024,
    });
    expect(c.pkiDir).toBe(join('.radfed/coordinator', 'pki'));
    expect(c.databaseUrl).toBeUndefined();
  });

  it('layers file < environment < flags, coercing numbers', () => {
    const cfg = file('ok.json', JSON.stringify({ port: 1000, logLevel: 'warn', dataDir: '/from-file' }));
    const c = loadCoordinatorConfig(
      { config: cfg, port: '3000' },
      { RADFED_PORT: '2000', RADFED_DATA_DIR: '/from-env' },
    );
    expect(c.port).toBe(3000);
    expect(c.dataDir).toBe('/from-env');
    expect(c.logLevel).toBe('warn');
  });

  it('names the bad field', () => {
    expect(() => loadCoordinatorConfig({ port: 'seventy' }, {})).toThrow(/port/);
    expect(() => loadCoordinatorConfig({}, { DATABASE_URL: 'mysql://x' })).toThrow(
      /databaseUrl: must be a postgres:\/\/ URL/,
    );
    expect(() => loadCoordinatorConfig({ config: file('typo.json', '{"prot": 1}') }, {})).toThrow(/prot/);
  });

  it('refuses a malformed or missing file with a readable ConfigError', () => {
    expect(() => loadCoordinatorConfig({ config: file('bad.json', '{ "port": ') }, {})).toThrow(ConfigError);
    expect(() => loadCoordinatorConfig({ config: file('bad2.json', '{ "port": ') }, {})).toThrow(
      /not valid JSON/,
    );
    expect(() => loadCoordinatorConfig({ config: file('arr.json', '[1]') }, {})).toThrow(/JSON object/);
    expect(() => loadCoordinatorConfig({ config: join(dir, 'missing.json') }, {})).toThrow(
      /Cannot read config file/,
    );
  });

  it('takes certificate names, tick and shutdown grace by flag and environment', () => {
    expect(
      loadCoordinatorConfig(
        { hosts: ['a.example'], tickMs: '50' },
        { RADFED_SAN: 'b.example, 10.0.0.1', RADFED_SHUTDOWN_GRACE_SECONDS: '3' },
      ),
    ).toMatchObject({ hosts: ['a.example'], tickMs: 50, shutdownGraceSeconds: 3 });
    expect(
      loadCoordinatorConfig({}, { RADFED_SAN: 'b.example, 10.0.0.1', RADFED_TICK_MS: '100' }),
    ).toMatchObject({
      hosts: ['b.example', '10.0.0.1'],
      tickMs: 100,
      host: '127.0.0.1',
    });
    expect(() => loadCoordinatorConfig({}, { RADFED_TICK_MS: '1' })).toThrow(/tickMs/);
  });

  it('has transport limits with defaults, settable from file and environment', () => {
    expect(loadCoordinatorConfig({}, {})).toMatchObject({
      handshakeTimeoutSeconds: 10,
      keepaliveSeconds: 30,
      keepaliveTimeoutSeconds: 10,
      idleConnectionSeconds: 300,
      maxConnections: 1000,
      maxConcurrentStreams: 100,
      uploadInactivitySeconds: 60,
    });
    const cfg = file('limits.json', JSON.stringify({ maxConnections: 50, handshakeTimeoutSeconds: 2 }));
    const c = loadCoordinatorConfig({ config: cfg }, { RADFED_UPLOAD_INACTIVITY_SECONDS: '0.5' });
    expect(c).toMatchObject({ maxConnections: 50, handshakeTimeoutSeconds: 2, uploadInactivitySeconds: 0.5 });
    expect(() => loadCoordinatorConfig({}, { RADFED_MAX_CONCURRENT_STREAMS: '0' })).toThrow(
      /maxConcurrentStreams/,
    );
  });

  it('takes HE worker threads from RADFED_HE_THREADS, naming a bad value', () => {
    expect(loadCoordinatorConfig({}, {}).heThreads).toBeUndefined();
    expect(loadCoordinatorConfig({}, { RADFED_HE_THREADS: '3' }).heThreads).toBe(3);
    expect(() => loadCoordinatorConfig({}, { RADFED_HE_THREADS: '0' })).toThrow(/heThreads/);
  });
});
