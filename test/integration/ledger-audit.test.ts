/**
 * The provenance ledger against a real coordinator (in-process, gRPC over mutual TLS) on PostgreSQL:
 * sites sign what they upload and keep the coordinator's receipts, the auditor exports through
 * AuditService and `radfed audit verify` (the real CLI, offline) checks everything. Then each tamper
 * case changes the stored state in PostgreSQL or the blob store, exports again, and verify must fail
 * with a non-zero exit code naming the entry; each case restores what it changed.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status } from '@grpc/grpc-js';
import { type Coordinator, type OperatorClient, tlsFromPkiDir } from '@radfed/coordinator';
import { runAuditBench } from '@radfed/coordinator/bench';
import { AuditClient, roundQueries, runToEnd, waitFor, writeAuditExport } from '@radfed/coordinator/testing';
import {
  AuditServiceClient,
  channelCredentials,
  channelOptions,
  type Round,
  RpcError,
  unaryCall,
} from '@radfed/proto';
import {
  canonicalJson,
  DEFAULT_HE_PRESET,
  GENESIS_DIGEST,
  generateSigningKeyPair,
  hePreset,
  ledgerEntryDigest,
  signLedgerDigest,
  signUpdate,
} from '@radfed/shared';
import { SiteHe } from '@radfed/shared/he-site';
import {
  type AgentIdentity,
  type SiteClient,
  saveReceipt,
  storedReceipt,
  updateSigner,
} from '@radfed/site-agent';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrolSite } from '../support/agents.js';
import { AGENT_BIN, RADFED_BIN } from '../support/cli.js';
import { type InProcessCoordinator, startInProcessCoordinator } from '../support/coordinator.js';
import { createTempDatabase, type TempDatabase } from '../support/services.js';

const OPEN = 2;

interface Row {
  index: number;
  kind: string;
  payload: string;
  previous_digest: string;
  digest: string;
  signature: string;
  created_at: Date;
}

describe('provenance ledger: signed uploads, receipts, offline audit, tamper evidence (PostgreSQL)', () => {
  let dir: string;
  let db: TempDatabase;
  let sql: pg.Client;
  let coordinator: InProcessCoordinator;
  let coord: Coordinator;
  let address: string;
  let pkiDir: string;
  let blobDir: string;
  let op: OperatorClient;
  let auditor: AuditClient;
  let fedId: string;
  let parameterCount: number;
  const sites: { id: AgentIdentity; client: SiteClient; commitment: string }[] = [];

  const rows = async (): Promise<Row[]> =>
    (
      await sql.query<Row>(
        'select index, kind, payload, previous_digest, digest, signature, created_at from ledger_entries where federation_id = $1 order by index',
        [fedId],
      )
    ).rows;
  const entryOf = async (kind: string, pick: (p: Record<string, unknown>) => boolean = () => true) => {
    const row = (await rows()).find((r) => r.kind === kind && pick(JSON.parse(r.payload)));
    if (!row) throw new Error(`no ${kind} entry`);
    return row;
  };
  const update = (value: number, samples: number) =>
    new Uint8Array(new Float64Array(parameterCount).fill(value * samples).buffer);

  const upload = async (i: number, round: Round, value: number, samples: number) => {
    const s = sites[i]!;
    const receipt = await s.client.upload({
      roundId: round.id,
      modelVersion: Number(round.modelVersion),
      data: update(value, samples),
      sampleCount: samples,
      metrics: { loss: value },
      encoding: 'plain-f64-weighted',
      datasetCommitment: s.commitment,
      sign: updateSigner(s.id.signingKeyPem),
    });
    await saveReceipt(
      join(dir, 'agents', s.id.siteName),
      storedReceipt(receipt, {
        federationId: fedId,
        roundId: round.id,
        roundNumber: round.number,
        modelVersion: Number(round.modelVersion),
        datasetCommitment: s.commitment,
        sampleCount: samples,
        metrics: { loss: value },
      }),
    );
    return receipt;
  };
  const openRound = (number: number) =>
    waitFor(`round ${number} to open`, async () => {
      const r = (await op.listRounds(fedId)).find((x) => x.number === number);
      return r?.state === OPEN ? r : undefined;
    });

  let n = 0;
  const exportAndVerify = async (extra: string[] = []) => {
    const path = join(dir, `export-${++n}.ndjson`);
    await writeAuditExport(auditor, fedId, path);
    const res = await runToEnd(RADFED_BIN, ['audit', 'verify', path, ...extra]);
    return { ...res, path };
  };
  const expectFailureAt = async (index: number, kind: string | undefined, why: RegExp) => {
    const res = await exportAndVerify();
    expect(res.code, res.out).toBe(1);
    const head = kind ? `entry #${index} (${kind})` : `entry #${index}`;
    expect(res.out).toContain(`FAILED at ${head}:`);
    expect(res.out).toMatch(why);
    return res;
  };

  beforeAll(async () => {
    db = await createTempDatabase('radfed_ledger');
    sql = new pg.Client({ connectionString: db.url });
    coordinator = await startInProcessCoordinator('ledger', { databaseUrl: db.url });
    ({ dir, coord, address, op } = coordinator);
    await sql.connect();
    pkiDir = coordinator.config.pkiDir;
    blobDir = coordinator.config.blobDir;
    auditor = new AuditClient(address, tlsFromPkiDir(pkiDir, 'auditor'));
    // Plaintext keeps these cases about the ledger; the aggregator is looked up the same way for HE.
    const fed = await op.createFederation({
      name: 'ledger',
      hePreset: 'plaintext',
      minSites: 2,
      roundDeadlineSeconds: 600,
    });
    fedId = fed.id;
    parameterCount = fed.parameterCount;
    for (const name of ['alpha', 'beta', 'gamma']) {
      const { id, client } = await enrolSite(coordinator, fedId, name, join(dir, 'agents', name));
      sites.push({ id, client, commitment: createHash('sha256').update(name).digest('hex') });
    }
    await op.scheduleRounds(fedId, 3);
  });

  afterAll(async () => {
    for (const s of sites) s.client.close();
    auditor?.close();
    await coordinator?.stop();
    await sql?.end();
    await db?.drop();
  });

  it('refuses unsigned and wrongly signed uploads, storing nothing', async () => {
    const round = await openRound(1);
    const s = sites[0]!;
    const base = {
      roundId: round.id,
      modelVersion: 0,
      data: update(1, 10),
      sampleCount: 10,
      metrics: { loss: 1 },
      encoding: 'plain-f64-weighted',
      datasetCommitment: s.commitment,
    };
    // Signed with another site's key: the coordinator checks against the enrolled key.
    const forged = await s.client
      .upload({ ...base, sign: updateSigner(sites[1]!.id.signingKeyPem) })
      .catch(RpcError.from);
    expect(forged).toBeInstanceOf(RpcError);
    expect((forged as RpcError).codeName).toBe('PERMISSION_DENIED');
    expect((forged as RpcError).message).toMatch(/does not verify against this site's enrolled signing key/);
    // Signing facts other than the upload's (here, more samples than declared).
    const lying = await s.client
      .upload({ ...base, sign: (f) => signUpdate(s.id.signingKeyPem, { ...f, sampleCount: 99 }) })
      .catch(RpcError.from);
    expect((lying as RpcError).codeName).toBe('PERMISSION_DENIED');
    const unsigned = await s.client.upload({ ...base, sign: () => new Uint8Array(0) }).catch(RpcError.from);
    expect((unsigned as RpcError).codeName).toBe('INVALID_ARGUMENT');
    expect((unsigned as RpcError).message).toMatch(/not signed/);
    const part = (await roundQueries.listParticipants(coord.database.db, round.id)).find(
      (p) => p.siteId === s.id.siteId,
    );
    expect(part?.state).toBe('invited');
    expect((await rows()).some((r) => r.kind === 'update.accepted')).toBe(false);
  });

  it('records three rounds; the export verifies offline and every receipt is in it', async () => {
    // Round 1: all three sites; round 2: two submit and one declines; round 3: cancelled after one.
    const r1 = await openRound(1);
    const first = await upload(0, r1, 1, 10);
    expect(first.coordinatorSignature.length).toBe(64);
    const again = await upload(0, r1, 1, 10); // a lost answer: the same receipt again
    expect(again.duplicate).toBe(true);
    expect(again.coordinatorSignature.equals(first.coordinatorSignature)).toBe(true);
    expect(again.ledgerIndex).toBe(first.ledgerIndex);
    await upload(1, r1, 2, 20);
    await upload(2, r1, 3, 30);
    const r2 = await openRound(2);
    // Values that no other update or aggregate shares: blobs are found by digest.
    await upload(0, r2, 4.5, 10);
    await upload(1, r2, 5.5, 20);
    await sites[2]!.client.decline(r2.id, 'scanner maintenance');
    const r3 = await openRound(3);
    await upload(2, r3, 6, 30);
    await op.cancelRound(r3.id, 'protocol amended');
    await op.revokeSite(sites[2]!.id.siteId, 'left the consortium');
    // Revoking again changes nothing: the ledger keeps one site.revoked entry.
    await op.revokeSite(sites[2]!.id.siteId, 'revoked twice');

    const kinds = (await rows()).map((r) => r.kind);
    expect(kinds[0]).toBe('federation.created');
    expect(kinds.filter((k) => k === 'site.enrolled')).toHaveLength(3);
    expect(kinds.filter((k) => k === 'update.accepted')).toHaveLength(6);
    expect(kinds.filter((k) => k === 'round.sealed')).toHaveLength(2);
    expect(kinds).toContain('round.cancelled');
    expect(kinds.filter((k) => k === 'site.revoked')).toHaveLength(1);
    expect(kinds.at(-1)).toBe('site.revoked');

    const exportRun = await runToEnd(RADFED_BIN, [
      'audit',
      'export',
      fedId,
      '--out',
      join(dir, 'good.ndjson'),
      '--coordinator',
      address,
      '--pki-dir',
      pkiDir,
    ]);
    expect(exportRun.code, exportRun.out).toBe(0);
    expect(exportRun.out).toMatch(/5 stored updates/);
    // The auditor pins the coordinator's ledger key, obtained out of band (here: ListCertificates).
    const keyFile = join(dir, 'coordinator-ledger-key.pem');
    writeFileSync(keyFile, (await auditor.certificates(fedId)).coordinatorSigningPublicKeyPem);
    const verify = await runToEnd(RADFED_BIN, [
      'audit',
      'verify',
      join(dir, 'good.ndjson'),
      '--coordinator-key',
      keyFile,
    ]);
    expect(verify.code, verify.out).toBe(0);
    expect(verify.out).toMatch(/pinned with --coordinator-key/);
    expect(verify.out).toMatch(/^1 +sealed +v0->v1 +3\/3 +60 +recomputed +yes/m);
    expect(verify.out).toMatch(/^2 +sealed +v1->v2 +2\/3 +30 +recomputed +yes/m);
    expect(verify.out).toMatch(/^3 +cancelled +v2 +1\/3 +30 +- +yes +protocol amended/m);
    expect(verify.out).toMatch(/Aggregates recomputed exactly for 2 of 2 sealed rounds \(1-2\)/);
    expect(verify.out).toMatch(/^OK: /m);

    // Pinning another key fails at the first entry.
    const stranger = generateSigningKeyPair().publicKeyRaw.toString('base64');
    const wrongKey = await runToEnd(RADFED_BIN, [
      'audit',
      'verify',
      join(dir, 'good.ndjson'),
      '--coordinator-key',
      stranger,
    ]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.out).toMatch(
      /FAILED at entry #0 \(federation.created\): is not signed by the coordinator's ledger key/,
    );

    const receipts = await runToEnd(AGENT_BIN, [
      'receipts',
      'verify',
      '--export',
      join(dir, 'good.ndjson'),
      '--state-dir',
      join(dir, 'agents', 'alpha'),
    ]);
    expect(receipts.code, receipts.out).toBe(0);
    expect(receipts.out).toMatch(/2 receipts of alpha/);
    expect(receipts.out).toMatch(/OK: every receipt is in the ledger/);
  }, 120_000);

  it('serves the ledger to auditors only: pages, stream, head, certificates, PROV-JSON', async () => {
    const all = await rows();
    const raw = new AuditServiceClient(
      address,
      channelCredentials(tlsFromPkiDir(pkiDir, 'auditor')),
      channelOptions(),
    );
    const seen: number[] = [];
    let token = '';
    do {
      const page = await unaryCall(
        raw,
        raw.listLedgerEntries,
        { federationId: 'ledger', pageSize: 4, pageToken: token },
        new Metadata(),
      );
      seen.push(...page.entries.map((e) => Number(e.index)));
      token = page.nextPageToken;
    } while (token);
    expect(seen).toEqual(all.map((r) => r.index));
    const bad = await unaryCall(
      raw,
      raw.listLedgerEntries,
      { federationId: fedId, pageSize: 4, pageToken: 'nonsense' },
      new Metadata(),
    ).catch(RpcError.from);
    expect((bad as RpcError).code).toBe(status.INVALID_ARGUMENT);
    const head = await auditor.head('ledger');
    expect(Number(head.entryCount)).toBe(all.length);
    expect(head.digest.toString('hex')).toBe(all.at(-1)!.digest);
    const certs = await auditor.certificates(fedId);
    expect(certs.coordinatorSigningPublicKeyPem).toMatch(/BEGIN PUBLIC KEY/);
    expect(certs.sites.filter((s) => s.revoked)).toHaveLength(1);
    raw.close();

    // A site certificate may not read the ledger (other sites' counts and metrics are in it).
    const s = sites[0]!.id;
    const asSite = new AuditServiceClient(
      address,
      channelCredentials({ caCertPem: s.caCertPem, certPem: s.certPem, keyPem: s.tlsKeyPem }),
      channelOptions(),
    );
    const denied = await unaryCall(
      asSite,
      asSite.getLedgerHead,
      { federationId: fedId },
      new Metadata(),
    ).catch(RpcError.from);
    expect((denied as RpcError).code).toBe(status.PERMISSION_DENIED);
    asSite.close();

    const provPath = join(dir, 'prov.json');
    const prov = await runToEnd(RADFED_BIN, [
      'audit',
      'export',
      fedId,
      '--format',
      'prov',
      '--out',
      provPath,
      '--coordinator',
      address,
      '--pki-dir',
      pkiDir,
    ]);
    expect(prov.code, prov.out).toBe(0);
    const doc = JSON.parse(readFileSync(provPath, 'utf8'));
    expect(Object.keys(doc.entity)).toEqual(
      expect.arrayContaining(['fed:model/v0', 'fed:model/v1', 'fed:model/v2']),
    );
    expect(doc.activity['fed:round/1']['radfed:state']).toBe('sealed');
    expect(doc.activity['fed:round/3']['radfed:state']).toBe('cancelled');
    expect(doc.agent[`fed:site/${sites[0]!.id.siteId}`]['prov:type']).toBe('prov:Organization');
    expect(doc.agent['fed:coordinator']['prov:type']).toBe('prov:SoftwareAgent');
    const generated = Object.values(doc.wasGeneratedBy) as {
      'prov:entity': string;
      'prov:activity': string;
    }[];
    expect(generated).toContainEqual(
      expect.objectContaining({ 'prov:entity': 'fed:model/v2', 'prov:activity': 'fed:round/2' }),
    );
  });

  describe('tampering is caught and the entry named', () => {
    it('one byte of a ledger row', async () => {
      const row = await entryOf('update.accepted');
      const i = row.payload.indexOf('"sampleCount":') + '"sampleCount":'.length;
      const changed = `${row.payload.slice(0, i)}${Number(row.payload[i]) === 9 ? 8 : Number(row.payload[i]) + 1}${row.payload.slice(i + 1)}`;
      await sql.query('update ledger_entries set payload = $1 where federation_id = $2 and index = $3', [
        changed,
        fedId,
        row.index,
      ]);
      try {
        await expectFailureAt(
          row.index,
          'update.accepted',
          /does not match its digest.*contents were changed/,
        );
      } finally {
        await sql.query('update ledger_entries set payload = $1 where federation_id = $2 and index = $3', [
          row.payload,
          fedId,
          row.index,
        ]);
      }
    });

    it('one byte of a stored update (ciphertext)', async () => {
      const row = await entryOf('update.accepted');
      const p = JSON.parse(row.payload);
      const file = join(blobDir, 'rounds', p.roundId, 'updates', p.siteId);
      const original = readFileSync(file);
      const changed = Buffer.from(original);
      changed[1000] = changed[1000]! ^ 0x01;
      writeFileSync(file, changed);
      try {
        await expectFailureAt(row.index, 'update.accepted', /does not hash to the digest site .* signed/);
      } finally {
        writeFileSync(file, original);
      }
    });

    it("one byte of the coordinator's signature", async () => {
      const row = await entryOf('round.opened');
      const sig = Buffer.from(row.signature, 'base64');
      sig[10] = sig[10]! ^ 0x80;
      await sql.query('update ledger_entries set signature = $1 where federation_id = $2 and index = $3', [
        sig.toString('base64'),
        fedId,
        row.index,
      ]);
      try {
        await expectFailureAt(row.index, 'round.opened', /is not signed by the coordinator's ledger key/);
      } finally {
        await sql.query('update ledger_entries set signature = $1 where federation_id = $2 and index = $3', [
          row.signature,
          fedId,
          row.index,
        ]);
      }
    });

    it('a deleted entry', async () => {
      const row = await entryOf('round.sealed');
      await sql.query('delete from ledger_entries where federation_id = $1 and index = $2', [
        fedId,
        row.index,
      ]);
      try {
        await expectFailureAt(row.index, undefined, /is missing: the chain jumps/);
      } finally {
        await sql.query(
          'insert into ledger_entries (federation_id, index, kind, payload, previous_digest, digest, signature, created_at) values ($1,$2,$3,$4,$5,$6,$7,$8)',
          [
            fedId,
            row.index,
            row.kind,
            row.payload,
            row.previous_digest,
            row.digest,
            row.signature,
            row.created_at,
          ],
        );
      }
    });

    it('two entries reordered', async () => {
      const row = await entryOf('update.accepted');
      const swap = async () => {
        await sql.query('update ledger_entries set index = -1 where federation_id = $1 and index = $2', [
          fedId,
          row.index,
        ]);
        await sql.query('update ledger_entries set index = $2 where federation_id = $1 and index = $3', [
          fedId,
          row.index,
          row.index + 1,
        ]);
        await sql.query('update ledger_entries set index = $2 where federation_id = $1 and index = -1', [
          fedId,
          row.index + 1,
        ]);
      };
      await swap();
      try {
        await expectFailureAt(row.index, 'update.accepted', /does not link to the entry before it/);
      } finally {
        await swap();
      }
    });

    it("one site's update swapped for another's", async () => {
      const round = (await rows()).find((r) => r.kind === 'round.sealed')!;
      const { roundId } = JSON.parse(round.payload);
      const [a, b] = (await roundQueries.listParticipants(coord.database.db, roundId)).filter(
        (p) => p.state === 'submitted',
      );
      const swapKeys = async (x: string | null, y: string | null) => {
        await sql.query('update participants set update_key = $1 where round_id = $2 and site_id = $3', [
          x,
          roundId,
          a!.siteId,
        ]);
        await sql.query('update participants set update_key = $1 where round_id = $2 and site_id = $3', [
          y,
          roundId,
          b!.siteId,
        ]);
      };
      await swapKeys(b!.updateKey, a!.updateKey);
      try {
        const first = await entryOf(
          'update.accepted',
          (p) => p.roundId === roundId && (p.siteId === a!.siteId || p.siteId === b!.siteId),
        );
        await expectFailureAt(first.index, 'update.accepted', /does not hash to the digest site .* signed/);
      } finally {
        await swapKeys(a!.updateKey, b!.updateKey);
      }
    });

    it('a forged entry re-signed with a key that is not the coordinator’s', async () => {
      const row = await entryOf('update.accepted');
      const payload = JSON.parse(row.payload);
      const forged = canonicalJson({ ...payload, sampleCount: payload.sampleCount * 10 });
      const digest = ledgerEntryDigest({
        federationId: fedId,
        index: row.index,
        kind: row.kind,
        payload: forged,
        previousDigest: row.previous_digest,
        createdAt: row.created_at.toISOString(),
      });
      const signature = signLedgerDigest(generateSigningKeyPair().privateKeyPem, digest);
      await sql.query(
        'update ledger_entries set payload = $1, digest = $2, signature = $3 where federation_id = $4 and index = $5',
        [forged, digest, signature, fedId, row.index],
      );
      try {
        await expectFailureAt(row.index, 'update.accepted', /is not signed by the coordinator's ledger key/);
      } finally {
        await sql.query(
          'update ledger_entries set payload = $1, digest = $2, signature = $3 where federation_id = $4 and index = $5',
          [row.payload, row.digest, row.signature, fedId, row.index],
        );
      }
    });

    it("even the coordinator's own key cannot rewrite what a site signed; the site's receipts disagree", async () => {
      // A breached coordinator rewrites a sample count and re-signs the whole chain from there.
      const before = await rows();
      const target = before.find((r) => r.kind === 'update.accepted')!;
      const key = readFileSync(join(pkiDir, 'coordinator-signing.key'), 'utf8');
      let previous = target.previous_digest;
      for (const row of before.filter((r) => r.index >= target.index)) {
        const payload =
          row.index === target.index
            ? canonicalJson({
                ...JSON.parse(row.payload),
                sampleCount: JSON.parse(row.payload).sampleCount + 1,
              })
            : row.payload;
        const digest = ledgerEntryDigest({
          federationId: fedId,
          index: row.index,
          kind: row.kind,
          payload,
          previousDigest: previous,
          createdAt: row.created_at.toISOString(),
        });
        await sql.query(
          'update ledger_entries set payload = $1, previous_digest = $2, digest = $3, signature = $4 where federation_id = $5 and index = $6',
          [payload, previous, digest, signLedgerDigest(key, digest), fedId, row.index],
        );
        previous = digest;
      }
      try {
        const res = await expectFailureAt(
          target.index,
          'update.accepted',
          /did not sign: its signature does not verify/,
        );
        const owner = sites.find((s) => s.id.siteId === JSON.parse(target.payload).siteId)!;
        const receipts = await runToEnd(AGENT_BIN, [
          'receipts',
          'verify',
          '--export',
          res.path,
          '--state-dir',
          join(dir, 'agents', owner.id.siteName),
        ]);
        expect(receipts.code).toBe(1);
        expect(receipts.out).toMatch(
          new RegExp(`entry #${target.index}: NOT BACKED: .*this site's signature`),
        );
      } finally {
        for (const row of before.filter((r) => r.index >= target.index)) {
          await sql.query(
            'update ledger_entries set payload = $1, previous_digest = $2, digest = $3, signature = $4 where federation_id = $5 and index = $6',
            [row.payload, row.previous_digest, row.digest, row.signature, fedId, row.index],
          );
        }
      }
      expect(before[0]!.previous_digest).toBe(GENESIS_DIGEST);
    }, 60_000);

    it('a row whose payload is not JSON: the export still carries it as stored, and verify names it', async () => {
      const row = await entryOf('update.accepted');
      // What a damaged database row looks like: `Expected ':' after property name` to a JSON parser.
      const damaged = row.payload.replace('":', '" ');
      await sql.query('update ledger_entries set payload = $1 where federation_id = $2 and index = $3', [
        damaged,
        fedId,
        row.index,
      ]);
      try {
        const out = join(dir, 'damaged.ndjson');
        const exported = await runToEnd(RADFED_BIN, [
          'audit',
          'export',
          fedId,
          '--out',
          out,
          '--coordinator',
          address,
          '--pki-dir',
          pkiDir,
        ]);
        expect(exported.code, exported.out).toBe(0);
        expect(exported.out).toContain(
          `payload is not JSON were exported as stored, and verify will name them: #${row.index}.`,
        );
        const line = readFileSync(out, 'utf8')
          .split('\n')
          .find((l) => l.startsWith('{"type":"entry"') && JSON.parse(l).index === row.index);
        expect(JSON.parse(line!).payload).toBe(damaged);
        const verify = await runToEnd(RADFED_BIN, ['audit', 'verify', out]);
        expect(verify.code, verify.out).toBe(1);
        expect(verify.out).toContain(
          `FAILED at entry #${row.index} (update.accepted): has a payload that is not JSON`,
        );
      } finally {
        await sql.query('update ledger_entries set payload = $1 where federation_id = $2 and index = $3', [
          row.payload,
          fedId,
          row.index,
        ]);
      }
    });

    describe('an export file edited by hand', () => {
      const edited = async (edit: (lines: string[], entryAt: (index: number) => number) => void) => {
        const path = join(dir, `edited-${++n}.ndjson`);
        await writeAuditExport(auditor, fedId, path);
        const lines = readFileSync(path, 'utf8').split('\n');
        const entryAt = (index: number) =>
          lines.findIndex((l) => l.startsWith('{"type":"entry"') && JSON.parse(l).index === index);
        edit(lines, entryAt);
        writeFileSync(path, lines.join('\n'));
        return runToEnd(RADFED_BIN, ['audit', 'verify', path]);
      };

      it('one entry line deleted: exit 1, naming the missing entry', async () => {
        const row = await entryOf('round.opened');
        const res = await edited((lines, at) => lines.splice(at(row.index), 1));
        expect(res.code, res.out).toBe(1);
        expect(res.out).toContain(
          `FAILED at entry #${row.index}: is missing: the chain jumps from #${row.index - 1} to #${row.index + 1}`,
        );
        expect(res.out).not.toMatch(/out of place/);
      });

      it('the last entry line deleted: exit 1, naming it', async () => {
        const last = (await rows()).at(-1)!;
        const res = await edited((lines, at) => lines.splice(at(last.index), 1));
        expect(res.code, res.out).toBe(1);
        // Named as missing (the revocation it recorded is then unaccounted for, at a lower index).
        expect(res.out).toMatch(
          new RegExp(`entry #${last.index}: is missing: the export ends at #${last.index - 1}`),
        );
      });

      it('two entry lines swapped: a reordering of exactly those two entries', async () => {
        const row = await entryOf('update.accepted');
        const other = row.index + 2;
        const res = await edited((lines, at) => {
          const [i, j] = [at(row.index), at(other)];
          [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        });
        expect(res.code, res.out).toBe(1);
        expect(res.out).toContain(
          `FAILED at entry #${row.index} (update.accepted): is out of place: entries #${row.index} and #${other} are swapped in the export`,
        );
        expect(res.out).not.toMatch(/also/);
      });
    });

    it('after all that, the restored ledger verifies again', async () => {
      const res = await exportAndVerify();
      expect(res.code, res.out).toBe(0);
    });
  });
});

describe('ciphertext retention: verify says which rounds it could recompute', () => {
  let dir: string;
  let coordinator: InProcessCoordinator;
  let coord: Coordinator;
  let op: OperatorClient;
  let auditor: AuditClient;

  beforeAll(async () => {
    coordinator = await startInProcessCoordinator('retention', { ciphertextRetentionRounds: 1 });
    ({ dir, coord, op } = coordinator);
    auditor = new AuditClient(coordinator.address, tlsFromPkiDir(coordinator.config.pkiDir, 'auditor'));
  });

  afterAll(async () => {
    auditor?.close();
    await coordinator?.stop();
  });

  it('keeps the latest round, records the pruning, and fails an update that vanished unrecorded', async () => {
    const fed = await op.createFederation({ name: 'kept', hePreset: 'plaintext', minSites: 2 });
    const sites: { id: AgentIdentity; client: SiteClient }[] = [];
    for (const name of ['a', 'b']) {
      sites.push(await enrolSite(coordinator, fed.id, name, join(dir, 'agents', name)));
    }
    await op.scheduleRounds(fed.id, 3);
    for (let number = 1; number <= 3; number++) {
      const round = await waitFor(`round ${number}`, async () => {
        const r = (await op.listRounds(fed.id)).find((x) => x.number === number);
        return r?.state === OPEN ? r : undefined;
      });
      for (const [i, s] of sites.entries()) {
        await s.client.upload({
          roundId: round.id,
          modelVersion: Number(round.modelVersion),
          data: new Uint8Array(new Float64Array(fed.parameterCount).fill(Math.sqrt(number * 10 + i)).buffer),
          sampleCount: 5,
          metrics: {},
          encoding: 'plain-f64-weighted',
          datasetCommitment: '00'.repeat(32),
          sign: updateSigner(s.id.signingKeyPem),
        });
      }
    }
    const rows = () =>
      coord.database.db.execute(
        `select index, kind, payload from ledger_entries where federation_id = '${fed.id}' order by index` as never,
      ) as Promise<{ rows: { index: number; kind: string; payload: string }[] }>;
    await waitFor('rounds 1 and 2 to be pruned', async () =>
      (await rows()).rows.filter((r) => r.kind === 'round.updates_pruned').length === 2 ? true : undefined,
    );

    const path = join(dir, 'kept.ndjson');
    const summary = await writeAuditExport(auditor, fed.id, path);
    expect(summary).toMatchObject({ updates: 2, absent: 4 });
    const ok = await runToEnd(RADFED_BIN, ['audit', 'verify', path]);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toMatch(
      /^1 +sealed +v0->v1 +2\/2 +10 +pruned +yes +updates deleted by retention \(entry #\d+\)/m,
    );
    expect(ok.out).toMatch(/^3 +sealed +v2->v3 +2\/2 +10 +recomputed +yes/m);
    expect(ok.out).toMatch(
      /recomputed exactly for 1 of 3 sealed rounds \(3\); not recomputable, updates deleted by retention: 1-2\./,
    );

    // A retained update deleted behind the ledger's back is not retention: verify fails on it.
    const last = (await rows()).rows.filter((r) => r.kind === 'update.accepted').at(-1)!;
    const p = JSON.parse(last.payload);
    rmSync(join(dir, 'coord', 'blobs', 'rounds', p.roundId, 'updates', p.siteId));
    await writeAuditExport(auditor, fed.id, path);
    const gone = await runToEnd(RADFED_BIN, ['audit', 'verify', path]);
    expect(gone.code).toBe(1);
    expect(gone.out).toContain(`FAILED at entry #${last.index} (update.accepted): its stored update is gone`);
    expect(gone.out).toMatch(/no retention entry in the ledger deleted it/);
    for (const s of sites) s.client.close();
  });
});

describe('encrypted federation: verify recomputes ciphertext sums exactly', () => {
  it('exports and verifies BGV rounds folded by the encrypted aggregator', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'radfed-ledger-he-'));
    const preset = hePreset(DEFAULT_HE_PRESET);
    const cipher = new SiteHe(1);
    const lines: string[] = [];
    try {
      const key = await cipher.generateKeys(preset);
      // Throws unless verify passes with every sealed round's ciphertext sum recomputed.
      await runAuditBench({
        rounds: 3,
        sites: 2,
        preset: DEFAULT_HE_PRESET,
        he: {
          keyId: key.keyId,
          publicParameters: key.publicParameters,
          encrypt: async (weights, samples, plan) =>
            (await cipher.encrypt(preset, key, weights, samples, plan)).bytes,
        },
        dir,
        say: (line) => lines.push(line),
      });
      expect(lines.join('\n')).toMatch(/verify: 3\/3 aggregates recomputed exactly/);
      expect(lines.join('\n')).toMatch(/preset bgv-8192 \(he-bgv-8192\)/);
    } finally {
      await cipher.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
