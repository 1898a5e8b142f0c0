import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IncompleteDevPkiError } from '../errors.js';
import { initDevPki } from './dev-pki.js';
import { identifyPeer } from './identify.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'radfed-pki-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

describe('initDevPki', () => {
  it('creates a CA and role certificates with private permissions, then loads them unchanged', async () => {
    const dir = join(root, 'pki');
    const pki = await initDevPki(dir, { hosts: ['coord.internal', '10.0.0.5'] });
    expect(pki.created).toBe(true);
    expect(await mode(dir)).toBe(0o700);
    for (const pair of [pki.ca, pki.coordinator, pki.operator, pki.auditor]) {
      expect(await mode(pair.keyPath)).toBe(0o600);
    }
    expect(pki.ca.certPath).toBe(join(dir, 'ca.crt'));
    expect(pki.auditor.keyPath).toBe(join(dir, 'auditor.key'));

    expect(identifyPeer(new X509Certificate(pki.operator.certPem).raw, pki.ca.certPem)).toMatchObject({
      commonName: 'operator',
      role: 'operator',
    });
    expect(identifyPeer(new X509Certificate(pki.auditor.certPem).raw, pki.ca.certPem).role).toBe('auditor');
    const coordinator = new X509Certificate(pki.coordinator.certPem);
    expect(identifyPeer(coordinator.raw, pki.ca.certPem).role).toBe('coordinator');
    expect(coordinator.subjectAltName).toBe(
      'DNS:localhost, DNS:coord.internal, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:10.0.0.5',
    );

    const again = await initDevPki(dir);
    expect(again.created).toBe(false);
    expect(again.ca).toEqual(pki.ca);
    expect(again.coordinator).toEqual(pki.coordinator);
    expect(again.operator).toEqual(pki.operator);
    expect(again.auditor).toEqual(pki.auditor);
  });

  it('refuses a directory holding only part of a PKI', async () => {
    const pki = await initDevPki(root);
    await unlink(pki.operator.keyPath);
    await expect(initDevPki(root)).rejects.toThrow(IncompleteDevPkiError);
    await expect(initDevPki(root)).rejects.toThrow(/operator\.key/);
  });
});
