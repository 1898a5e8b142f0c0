/**
 * A demo-like encrypted federation on real processes (a coordinator on PGlite with local blobs, three
 * agents training on DICOM images for two rounds), then the proof that the coordinator never held the
 * federation's HE secret key: not in any database table or database file, not in any blob or other
 * file it wrote, not anywhere in its process memory (WASM heaps of its HE threads included), while
 * the same scan finds the key in an agent's memory. The aggregate it holds decrypts to plausible
 * weights with a site's key and to noise with any other.
 */
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OperatorClient } from '@radfed/coordinator';
import {
  enrolAndRunAgent,
  LocalBlobStore,
  openDatabase,
  ProcessGroup,
  prepareSiteData,
  waitFor,
} from '@radfed/coordinator/testing';
import { RoundState } from '@radfed/proto';
import { hePreset, planQuantisation } from '@radfed/shared';
import { type HeKeyMaterial, SiteHe } from '@radfed/shared/he-site';
import { HE_KEY_FILE } from '@radfed/site-agent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinatorProcess } from '../support/coordinator.js';

const ROUNDS = 2;

/** Byte patterns that identify a secret key: raw windows of its coefficients, and their hex and base64. */
function fingerprints(secretKey: Buffer): { raw: Buffer[]; text: Buffer[] } {
  const raw: Buffer[] = [];
  for (const back of [60_000, 45_000, 30_000, 15_000, 1_000]) {
    raw.push(secretKey.subarray(secretKey.length - back, secretKey.length - back + 48));
  }
  const b64 = secretKey.toString('base64');
  const text = [
    ...raw.map((w) => Buffer.from(w.toString('hex'))),
    ...[20_000, 40_000, 60_000, 80_000].map((at) => Buffer.from(b64.slice(at, at + 64))),
  ];
  return { raw, text };
}

type Row = Record<string, unknown>;

/** Rows of a raw query, whichever driver answered. */
async function rowsOf(db: Awaited<ReturnType<typeof openDatabase>>, q: string): Promise<Row[]> {
  const res = (await db.db.execute(q as never)) as unknown as { rows?: Row[] } | Row[];
  return Array.isArray(res) ? res : (res.rows ?? []);
}

function containsAny(haystack: Buffer, needles: Buffer[]): boolean {
  return needles.some((n) => haystack.includes(n));
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** Scans every readable mapping of process `pid`; returns bytes scanned and whether anything matched. */
function scanProcess(pid: number, needles: Buffer[]): { scanned: number; found: boolean } {
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter(Boolean);
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  const overlap = Math.max(...needles.map((n) => n.length));
  const chunk = Buffer.alloc(32 * 1024 * 1024 + overlap);
  let scanned = 0;
  try {
    for (const line of maps) {
      const [range, perms] = line.split(' ');
      if (!perms?.startsWith('r') || line.includes('[vvar]')) continue;
      const [start, end] = range!.split('-').map((h) => BigInt(`0x${h}`)) as [bigint, bigint];
      for (let at = start; at < end; at += BigInt(chunk.length - overlap)) {
        const len = Number(end - at < BigInt(chunk.length) ? end - at : BigInt(chunk.length));
        let got = 0;
        try {
          got = readSync(fd, chunk, 0, len, at);
        } catch {
          break; // unreadable mapping (e.g. a guard page): nothing of ours lives there
        }
        scanned += got;
        if (containsAny(chunk.subarray(0, got), needles)) return { scanned, found: true };
      }
    }
  } finally {
    closeSync(fd);
  }
  return { scanned, found: false };
}

describe('encrypted federation on real processes: the coordinator never holds the secret key', () => {
  let dir: string;
  const group = new ProcessGroup();
  let op: OperatorClient;
  const cipher = new SiteHe(1);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'radfed-he-e2e-'));
  });

  afterAll(async () => {
    op?.close();
    await group.stopAll(5000);
    await cipher.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs two encrypted rounds, then finds no secret-key material at the coordinator', async () => {
    const coordinator = await startCoordinatorProcess(group, { dir });
    op = coordinator.op;
    const coordDir = coordinator.dataDir;
    const fed = await op.createFederation({ name: 'demo-he', minSites: 2, roundDeadlineSeconds: 120 });
    expect(fed.hePreset?.name).toBe('bgv-8192');
    const sites = prepareSiteData(join(dir, 'data'));
    for (const site of sites) {
      const inv = await op.inviteSite(fed.id, site.name);
      await enrolAndRunAgent(group, site, {
        address: coordinator.address,
        caPath: coordinator.caPath,
        token: inv.token,
        stateDir: join(dir, 'agents', site.name),
        logDir: join(dir, 'logs'),
      });
    }
    await op.scheduleRounds(fed.id, ROUNDS);
    const rounds = await waitFor(
      `${ROUNDS} rounds to seal`,
      async () => {
        const rs = await op.listRounds(fed.id);
        return rs.length === ROUNDS && rs.every((r) => r.state >= RoundState.ROUND_STATE_SEALED)
          ? rs
          : undefined;
      },
      240_000,
      500,
    );
    for (const r of rounds) expect(r.state, r.failureReason).toBe(RoundState.ROUND_STATE_SEALED);
    expect((await op.getFederation(fed.id)).heKeysPublished).toBe(true);
    for (const site of sites) {
      expect(readFileSync(join(dir, 'logs', `${site.name}.log`), 'utf8')).toMatch(
        /decrypted model v1 \(3 sites/,
      );
    }

    // Every site holds the same key; its file is private to the site.
    const stored = sites.map((s) => {
      const path = join(dir, 'agents', s.name, HE_KEY_FILE);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      return JSON.parse(readFileSync(path, 'utf8')) as {
        keyId: string;
        secretKey: string;
        publicParameters: string;
      };
    });
    expect(new Set(stored.map((k) => k.secretKey)).size).toBe(1);
    const secretKey = Buffer.from(stored[0]!.secretKey, 'base64');
    const { raw, text } = fingerprints(secretKey);
    const needles = [...raw, ...text];

    // Process memory: the scan finds the key in an agent (so it works) and not in the coordinator.
    const agentScan = scanProcess(group.children.get(sites[0]!.name)!.pid!, needles);
    expect(agentScan.found).toBe(true);
    const coordScan = scanProcess(coordinator.child.pid!, needles);
    expect(coordScan.scanned).toBeGreaterThan(50 * 1024 * 1024);
    expect(coordScan.found).toBe(false);

    const model = await waitFor('the last model', async () => {
      const f = await op.getFederation(fed.id);
      return Number(f.currentModelVersion) === ROUNDS ? f : undefined;
    });
    op.close();
    await group.stopAll(10_000);

    // Every file the coordinator wrote: database files, blobs (ciphertexts, public parameters), PKI.
    const files = filesUnder(coordDir);
    expect(files.some((f) => f.includes(`keys/${fed.id}/`))).toBe(true);
    for (const file of files) expect(containsAny(readFileSync(file), needles), file).toBe(false);

    // Every row of every table, bytes as hex.
    const db = await openDatabase({ dataDir: join(coordDir, 'db') });
    const tables = await rowsOf(
      db,
      "select table_schema, table_name from information_schema.tables where table_schema in ('public', 'drizzle')",
    );
    expect(tables.map((t) => t.table_name)).toEqual(
      expect.arrayContaining(['key_bundles', 'wrapped_keys', 'rounds']),
    );
    let dumped = 0;
    for (const t of tables) {
      const rows = await rowsOf(db, `select * from "${t.table_schema}"."${t.table_name}"`);
      const dump = JSON.stringify(rows, (_k, v) =>
        v instanceof Uint8Array ? Buffer.from(v).toString('hex') : typeof v === 'bigint' ? String(v) : v,
      );
      dumped += dump.length;
      expect(
        containsAny(Buffer.from(dump), [...text, ...raw.map((w) => Buffer.from(w.toString('hex')))]),
        String(t.table_name),
      ).toBe(false);
    }
    expect(dumped).toBeGreaterThan(10_000);
    const [mv] = await rowsOf(
      db,
      `select blob_key, total_samples from model_versions where federation_id = '${fed.id}' and version = ${ROUNDS}`,
    );
    await db.close();

    // The sealed aggregate decrypts with a site's key, and is noise under any other.
    const blobs = new LocalBlobStore({ root: join(coordDir, 'blobs') });
    const aggregate = await blobs.get(String(mv!.blob_key));
    const totalSamples = Number(mv!.total_samples);
    await blobs.close();
    const preset = hePreset('bgv-8192');
    const plan = planQuantisation(preset, { maxSites: 100, maxSamplesPerSite: 100_000, maxAbsWeight: 8 });
    const siteKey: HeKeyMaterial = {
      keyId: stored[0]!.keyId,
      publicParameters: Buffer.from(stored[0]!.publicParameters, 'base64'),
      secretKey,
    };
    const P = model.parameterCount;
    const good = await cipher.decryptAverage(preset, siteKey, aggregate, P, totalSamples, 3, plan);
    const maxAbs = (w: Float64Array) => w.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    expect(maxAbs(good.weights)).toBeLessThan(8);
    expect(good.weights.every(Number.isFinite)).toBe(true);
    // Any other secret key, even presented under this federation's public parameters and key id.
    const other = await cipher.generateKeys(preset);
    const forged: HeKeyMaterial = { ...siteKey, secretKey: other.secretKey };
    const noise = await cipher.decryptAverage(preset, forged, aggregate, P, totalSamples, 3, plan);
    expect(maxAbs(noise.weights)).toBeGreaterThan(1000);
  });
});
