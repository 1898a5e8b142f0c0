import { performance } from 'node:perf_hooks';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinModelSpec, createCsr, generateKeyWrapKeyPair, generateSigningKeyPair, sha256Hex, silentLogger } from '@radfed/shared';
import { startCoordinator } from '../app.js';
import { LocalBlobStore } from '../blobs/local-blob-store.js';
import { loadCoordinatorConfig } from '../config/config.js';
import * as roundQ from '../store/queries/rounds.js';
const acc: Record<string, number> = {};
const wrap = (obj: any, name: string, label: string) => { const f = obj[name]; obj[name] = async function (...a: any[]) { const t = performance.now(); try { return await f.apply(this, a); } finally { acc[label] = (acc[label] ?? 0) + performance.now() - t; } }; };
for (const m of ['put', 'get', 'delete']) wrap(LocalBlobStore.prototype, m, `blob.${m}`);
const dir = mkdtempSync(join(tmpdir(), 'probe-'));
const config = loadCoordinatorConfig({ dataDir: join(dir, 'c'), port: 0, tickMs: 10000 }, {});
const coord = await startCoordinator(config, silentLogger);
wrap(coord.database.db, 'transaction', 'db.tx');
const fed = await coord.federations.create({ name: 'p', modelSpec: builtinModelSpec(), hePreset: 'plaintext', minSites: 3, roundDeadlineSeconds: 99999, maxSamplesPerSite: 1000 });
const sites = [];
for (let i = 0; i < 3; i++) {
  const { token } = await coord.federations.invite(fed.id, `s${i}`);
  const { site } = await coord.federations.enrol({ token, csrPem: (await createCsr({ commonName: 'x' })).csrPem, signingPublicKey: generateSigningKeyPair().publicKeyRaw, keyWrapPublicKey: generateKeyWrapKeyPair().publicKeyRaw });
  sites.push(site.id);
}
await coord.engine.schedule(fed.id, 20);
for (const k of Object.keys(acc)) acc[k] = 0;
const t0 = performance.now();
for (let r = 1; r <= 20; r++) {
  await coord.engine.tick();
  const [round] = await roundQ.listRoundsInStates(coord.database.db, ['open']);
  for (const [i, s] of sites.entries()) {
    const u = new Uint8Array(new Float64Array(fed.parameterCount).fill(r + i / 7).buffer);
    await coord.engine.submit({ roundId: round!.id, siteId: s, modelVersion: round!.modelVersion ?? 0, update: u, digest: sha256Hex(u), sampleCount: 5, metrics: {} });
  }
}
console.log('total', performance.now() - t0, JSON.stringify(acc));
await coord.stop();
