import {
  builtinModelSpec,
  createCertificateAuthority,
  createCsr,
  generateKeyWrapKeyPair,
  generateSigningKeyPair,
} from '@radfed/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SiteNotFoundError } from '../errors.js';
import { Ledger } from '../ledger/ledger.js';
import { type DatabaseHandle, openDatabase } from '../store/client.js';
import * as ledgerQ from '../store/queries/ledger.js';
import * as outboxQ from '../store/queries/outbox.js';
import * as siteQ from '../store/queries/sites.js';
import { FederationService } from './service.js';

describe('FederationService site revocation (PGlite)', () => {
  let handle: DatabaseHandle;
  let feds: FederationService;

  beforeAll(async () => {
    handle = await openDatabase({ dataDir: 'memory://' });
    const key = generateSigningKeyPair();
    const ledger = new Ledger({
      signingKey: { privateKeyPem: key.privateKeyPem, publicKeyRaw: key.publicKeyRaw },
    });
    feds = new FederationService(handle.db, await createCertificateAuthority({}), ledger);
  }, 120_000); // PGlite starts and migrates in-process: slow on a busy machine.

  afterAll(async () => {
    await handle?.close();
  });

  const enrolSite = async (fed: string, name: string) => {
    const { token } = await feds.invite(fed, name);
    const csr = await createCsr({ commonName: name });
    const { site } = await feds.enrol({
      token,
      csrPem: csr.csrPem,
      signingPublicKey: generateSigningKeyPair().publicKeyRaw,
      keyWrapPublicKey: generateKeyWrapKeyPair().publicKeyRaw,
    });
    return site;
  };

  const kinds = async (federationId: string) =>
    (await ledgerQ.listEntries(handle.db, federationId, 0, 1000)).map((e) => e.kind);

  it('revokes once: a second revocation writes no second site.revoked entry or event', async () => {
    const fed = await feds.create({
      name: 'revoke-twice',
      modelSpec: builtinModelSpec('dense-ae-32'),
      minSites: 1,
      roundDeadlineSeconds: 60,
      maxSamplesPerSite: 1000,
    });
    const site = await enrolSite(fed.id, 'leeds');
    const other = await enrolSite(fed.id, 'york');

    const first = await feds.revoke(site.id, 'left the consortium');
    expect(first).toMatchObject({ state: 'revoked', revokedReason: 'left the consortium' });
    const again = await feds.revoke(site.id, 'typed it twice');
    // The site is returned as it is: still revoked for the first reason.
    expect(again).toMatchObject({ id: site.id, state: 'revoked', revokedReason: 'left the consortium' });

    expect((await kinds(fed.id)).filter((k) => k === 'site.revoked')).toHaveLength(1);
    const events = (await outboxQ.fetchUnpublished(handle.db, 1000)).filter(
      (e) => e.topic === 'site.revoked',
    );
    expect(events.map((e) => e.payload)).toEqual([
      { federationId: fed.id, siteId: site.id, reason: 'left the consortium' },
    ]);
    expect((await siteQ.getSite(handle.db, other.id))?.state).toBe('enrolled');
  });

  it('refuses to revoke a site that does not exist', async () => {
    await expect(feds.revoke('st_missing', 'gone')).rejects.toBeInstanceOf(SiteNotFoundError);
  });

  it('moves a site only along the site state machine (compare-and-set in the store)', async () => {
    const fed = await feds.create({
      name: 'site-states',
      modelSpec: builtinModelSpec('dense-ae-32'),
      minSites: 1,
      roundDeadlineSeconds: 60,
      maxSamplesPerSite: 1000,
    });
    const site = await enrolSite(fed.id, 'leeds');
    const revoked = await siteQ.updateSiteState(handle.db, site.id, 'revoked', { revokedReason: 'x' });
    expect(revoked?.state).toBe('revoked');
    // Already revoked, and nothing moves back into enrolled.
    expect(
      await siteQ.updateSiteState(handle.db, site.id, 'revoked', { revokedReason: 'y' }),
    ).toBeUndefined();
    expect(await siteQ.updateSiteState(handle.db, site.id, 'enrolled', {})).toBeUndefined();
    expect(await siteQ.getSite(handle.db, site.id)).toMatchObject({ state: 'revoked', revokedReason: 'x' });
  });
});
