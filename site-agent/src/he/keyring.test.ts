import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GetKeyBundleResponse } from '@radfed/proto';
import { DEFAULT_HE_PRESET, hePreset, silentLogger } from '@radfed/shared';
import type { SiteHe } from '@radfed/shared/he-site';
import { afterEach, describe, expect, it } from 'vitest';
import { HeKeyBundleError, TaskDeclinedError } from '../errors.js';
import type { SiteClient } from '../transport/site-client.js';
import { HeKeyring } from './keyring.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A keyring whose coordinator answers GetKeyBundle with `res`; no other call is made. */
function keyring(res: GetKeyBundleResponse): HeKeyring {
  const stateDir = mkdtempSync(join(tmpdir(), 'radfed-keyring-'));
  dirs.push(stateDir);
  const client = { getKeyBundle: async () => res } as unknown as SiteClient;
  return new HeKeyring({
    client,
    he: {} as SiteHe,
    stateDir,
    siteId: 'st_me',
    signingKeyPem: '',
    keyWrapKeyPem: '',
    log: silentLogger,
  });
}

async function declined(ring: HeKeyring): Promise<TaskDeclinedError> {
  const err = await ring.keyFor('fd_1', hePreset(DEFAULT_HE_PRESET)).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(TaskDeclinedError);
  return err as TaskDeclinedError;
}

describe('HeKeyring: an unusable key bundle declines the task, with the reason as its cause', () => {
  it('no copy wrapped for this site', async () => {
    const err = await declined(keyring({ bundle: undefined, signingPublicKeys: {} }));
    expect(err.cause).toBeInstanceOf(HeKeyBundleError);
    expect(err.message).toContain('the coordinator returned no key wrapped for this site');
  });

  it('a bundle for another preset', async () => {
    const wrapped = {
      siteId: 'st_me',
      wrappedBySiteId: 'st_custodian',
      ephemeralPublicKey: Buffer.alloc(32),
      nonce: Buffer.alloc(12),
      ciphertext: Buffer.alloc(16),
      signature: Buffer.alloc(64),
    };
    const bundle = {
      federationId: 'fd_1',
      custodianSiteId: 'st_custodian',
      presetHash: Buffer.alloc(32),
      publicParameters: Buffer.from('not these'),
      wrappedKeys: [wrapped],
      custodianSignature: Buffer.alloc(64),
      keyId: '',
    };
    const err = await declined(keyring({ bundle, signingPublicKeys: {} }));
    expect(err.cause).toBeInstanceOf(HeKeyBundleError);
    expect((err.cause as HeKeyBundleError).name).toBe('HeKeyBundleError');
    expect(err.message).toContain(`for another HE preset than ${DEFAULT_HE_PRESET}`);
  });
});
