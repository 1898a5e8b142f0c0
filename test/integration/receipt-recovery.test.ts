/**
 * Receipts after a crash, against a real coordinator (in-process, gRPC over mutual TLS) on
 * PostgreSQL. The coordinator commits an accepted update, and the answer to the upload never
 * reaches the agent (here: the agent noted the upload, then lost the answer). The round seals with
 * the update counted. `radfed-agent receipts verify` (the real CLI) must report the accepted update
 * it holds no receipt for; the agent's next connection fetches the receipt with GetReceipt, and
 * verify then passes.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { type OperatorClient, tlsFromPkiDir } from '@radfed/coordinator';
import { AuditClient, runToEnd, waitFor, writeAuditExport } from '@radfed/coordinator/testing';
import { RoundState } from '@radfed/proto';
import { silentLogger } from '@radfed/shared';
import {
  type AgentIdentity,
  listPending,
  listReceipts,
  notePending,
  recoverReceipts,
  type SiteClient,
  TaskLoop,
  TaskRunner,
  updateSigner,
} from '@radfed/site-agent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrolSite } from '../support/agents.js';
import { AGENT_BIN } from '../support/cli.js';
import { type InProcessCoordinator, startInProcessCoordinator } from '../support/coordinator.js';
import { createTempDatabase, type TempDatabase } from '../support/services.js';

describe('receipts after a crash: GetReceipt and receipts verify (PostgreSQL)', () => {
  let dir: string;
  let db: TempDatabase;
  let coordinator: InProcessCoordinator;
  let op: OperatorClient;
  let auditor: AuditClient;
  let fedId: string;
  let parameterCount: number;
  const sites: { id: AgentIdentity; client: SiteClient; stateDir: string }[] = [];

  beforeAll(async () => {
    db = await createTempDatabase('radfed_receipts');
    coordinator = await startInProcessCoordinator('receipts', { databaseUrl: db.url });
    const { address, config } = coordinator;
    ({ dir, op } = coordinator);
    auditor = new AuditClient(address, tlsFromPkiDir(config.pkiDir, 'auditor'));
    const fed = await op.createFederation({
      name: 'receipts',
      hePreset: 'plaintext',
      minSites: 1,
      roundDeadlineSeconds: 600,
    });
    fedId = fed.id;
    parameterCount = fed.parameterCount;
    for (const name of ['alpha', 'beta']) {
      sites.push(await enrolSite(coordinator, fedId, name, join(dir, 'agents', name)));
    }
    await op.scheduleRounds(fedId, 1);
  });

  afterAll(async () => {
    for (const s of sites) s.client.close();
    auditor?.close();
    await coordinator?.stop();
    await db?.drop();
  });

  it('an accepted update whose answer was lost: verify reports it, the next connection fetches it', async () => {
    const round = await waitFor('round 1 to open', async () => {
      const r = (await op.listRounds(fedId)).find((x) => x.number === 1);
      return r?.state === RoundState.ROUND_STATE_OPEN ? r : undefined;
    });
    const [alpha, beta] = sites as [(typeof sites)[0], (typeof sites)[0]];
    const facts = {
      federationId: fedId,
      roundId: round.id,
      roundNumber: round.number,
      modelVersion: Number(round.modelVersion),
      datasetCommitment: createHash('sha256').update('alpha').digest('hex'),
      sampleCount: 12,
      metrics: { loss: 0.5 },
    };
    // What the task runner does before an upload; then the answer is lost: no receipt is kept.
    await notePending(alpha.stateDir, facts);
    const lost = await alpha.client.upload({
      ...facts,
      data: new Uint8Array(new Float64Array(parameterCount).fill(6).buffer),
      encoding: 'plain-f64-weighted',
      sign: updateSigner(alpha.id.signingKeyPem),
    });
    for (const s of [alpha, beta]) await s.client.decline(round.id, 'x').catch(() => undefined);
    await waitFor('round 1 to seal', async () => {
      const r = (await op.listRounds(fedId)).find((x) => x.number === 1);
      return r?.state === RoundState.ROUND_STATE_SEALED ? r : undefined;
    });
    expect(await listReceipts(alpha.stateDir)).toEqual([]);

    const exportPath = join(dir, 'export.ndjson');
    await writeAuditExport(auditor, fedId, exportPath);
    const verify = (stateDir: string) =>
      runToEnd(AGENT_BIN, ['receipts', 'verify', '--export', exportPath, '--state-dir', stateDir]);
    const before = await verify(alpha.stateDir);
    expect(before.code, before.out).toBe(1);
    expect(before.out).toMatch(
      new RegExp(
        `round 1 \\(${round.id}\\) entry #${lost.ledgerIndex}: NO RECEIPT: .*carries this site's signature, so the answer was lost`,
      ),
    );
    expect(before.out).toMatch(/FAILED/);
    // Another site holds no receipt for alpha's update and is not asked for one.
    const other = await verify(beta.stateDir);
    expect(other.code, other.out).toBe(0);

    // A site reads only its own receipts: beta's request for the round finds nothing.
    expect(await beta.client.getReceipt(round.id)).toBeUndefined();
    expect(await recoverReceipts(beta.stateDir, beta.client, silentLogger)).toEqual([]);

    // The agent's next connection (its real task loop): the noted upload's receipt comes from the
    // ledger, as first issued, before any task runs. No task comes: the round has sealed.
    const runner = new TaskRunner({
      client: alpha.client,
      trainer: { train: () => Promise.reject(new Error('no training in this test')) },
      dataDir: join(dir, 'no-data'),
      stateDir: alpha.stateDir,
      log: silentLogger,
      signingKeyPem: alpha.id.signingKeyPem,
    });
    const loop = new TaskLoop({
      client: alpha.client,
      runner,
      log: silentLogger,
      agentVersion: 'test',
      backend: 'none',
    });
    const running = loop.run();
    const [fetched] = await waitFor('the lost receipt to be fetched', async () => {
      const held = await listReceipts(alpha.stateDir);
      return held.length > 0 ? held : undefined;
    });
    await loop.stop();
    await running;
    expect(fetched).toMatchObject({
      roundId: round.id,
      ledgerIndex: lost.ledgerIndex,
      coordinatorSignature: lost.coordinatorSignature.toString('base64'),
      acceptedAt: lost.acceptedAt.toISOString(),
      updateDigest: lost.updateDigest.toString('hex'),
      sampleCount: 12,
      metrics: { loss: 0.5 },
    });
    expect(await listPending(alpha.stateDir)).toEqual([]);

    const after = await verify(alpha.stateDir);
    expect(after.code, after.out).toBe(0);
    expect(after.out).toMatch(/1 receipts of alpha/);
    expect(after.out).toMatch(new RegExp(`entry #${lost.ledgerIndex}: in the ledger as submitted`));
    expect(after.out).toMatch(/^OK: /m);
  }, 120_000);
});
