/**
 * A federation's model leaves it: two agent processes seal an encrypted round of conv4, then a
 * site exports the model (`radfed-agent model export`, safetensors and tfjs) with its signed card,
 * and the auditor checks it offline (`radfed audit verify-model`) against an audit export; every bad
 * input is refused with a message and nothing half-written.
 */
import { generateKeyPairSync } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OperatorClient, tlsFromPkiDir } from '@radfed/coordinator';
import {
  AGENT_BIN,
  COORDINATOR_BIN,
  enrolAndRunAgent,
  freePort,
  modelSpecToProto,
  ProcessGroup,
  prepareSiteData,
  runToEnd,
  waitFor,
} from '@radfed/coordinator/testing';
import { RoundState } from '@radfed/proto';
import { builtinModelSpec, MODEL_CARD_FILE, parseModelCard, signedModelCard } from '@radfed/shared';
import { decodeSafetensors } from '@radfed/site-agent';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const repo = join(import.meta.dirname, '../..');
const RADFED_BIN = join(repo, 'coordinator/bin/radfed.mjs');

describe('model export and verify-model', () => {
  let dir: string;
  const group = new ProcessGroup();
  let op: OperatorClient;
  let address: string;
  let pkiDir: string;
  let fedId: string;
  const stateOf = (site: string) => join(dir, 'agents', site);
  const agent = (site: string, ...args: string[]) =>
    runToEnd(AGENT_BIN, ['model', 'export', '--state-dir', stateOf(site), ...args]);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'radfed-export-'));
    const port = await freePort();
    address = `127.0.0.1:${port}`;
    const coordDir = join(dir, 'coordinator');
    pkiDir = join(coordDir, 'pki');
    group.start('coordinator', COORDINATOR_BIN, ['--data-dir', coordDir, '--port', String(port)], {
      logFile: join(dir, 'logs/coordinator.log'),
    });
    op = await waitFor(
      'coordinator',
      async () => {
        const c = new OperatorClient({ address, tls: tlsFromPkiDir(pkiDir) });
        await c.listFederations();
        return c;
      },
      240_000,
    );
    const fed = await op.createFederation({
      name: 'export',
      minSites: 2,
      roundDeadlineSeconds: 600,
      modelSpec: modelSpecToProto(
        builtinModelSpec('conv4', { objective: 'masked-reconstruction', inputSize: 32, batchSize: 8 }),
      ),
    });
    fedId = fed.id;
    const sites = prepareSiteData(join(dir, 'data')).slice(0, 2);
    for (const site of sites) {
      const inv = await op.inviteSite(fed.id, site.name);
      await enrolAndRunAgent(group, site, {
        address,
        caPath: join(pkiDir, 'ca.crt'),
        token: inv.token,
        stateDir: stateOf(site.name),
        logDir: join(dir, 'logs'),
      });
    }
  }, 300_000);

  afterAll(async () => {
    op?.close();
    await group.stopAll(5000);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to export before this site has taken part in any round', async () => {
    const out = join(dir, 'early');
    const r = await agent('hospital-a', '--format', 'safetensors', '--out', out);
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(/has not taken part in a round/);
    expect(existsSync(out)).toBe(false);
  });

  it('exports the sealed model, signed, and verify-model accepts it; tampering is caught', async () => {
    await op.scheduleRounds(fedId, 1);
    const rounds = await waitFor(
      'round 1 to close',
      async () => {
        const rs = await op.listRounds(fedId);
        return rs.length === 1 && rs[0]!.state >= RoundState.ROUND_STATE_SEALED ? rs : undefined;
      },
      900_000,
      1000,
    );
    expect(rounds[0]!.state, rounds[0]!.failureReason).toBe(RoundState.ROUND_STATE_SEALED);

    // An unknown version, and a folder that is not empty: refused, nothing written.
    const unknown = await agent(
      'hospital-a',
      '--version',
      '7',
      '--format',
      'safetensors',
      '--out',
      join(dir, 'v7'),
    );
    expect(unknown.code, unknown.out).toBe(1);
    expect(unknown.out).toMatch(/no model version 7/);
    expect(existsSync(join(dir, 'v7'))).toBe(false);
    const busy = join(dir, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'keep.txt'), 'mine');
    const refused = await agent('hospital-a', '--format', 'safetensors', '--out', busy);
    expect(refused.code, refused.out).toBe(1);
    expect(refused.out).toMatch(/exists and is not empty/);
    expect(readdirSync(busy)).toEqual(['keep.txt']);

    const st = join(dir, 'model-st');
    const exported = await agent('hospital-a', '--format', 'safetensors', '--out', st);
    expect(exported.code, exported.out).toBe(0);
    expect(exported.out).toMatch(/downloaded and decrypted/);
    expect(readdirSync(st).sort()).toEqual(['README.md', 'config.json', 'model.safetensors']);
    const { tensors } = decodeSafetensors(readFileSync(join(st, 'model.safetensors')));
    const conv1 = tensors.find((t) => t.name === 'conv1.weight');
    expect(conv1?.shape).toEqual([32, 1, 3, 3]);
    expect(tensors.find((t) => t.name === 'bn4.num_batches_tracked')?.dtype).toBe('I64');
    const card = readFileSync(join(st, MODEL_CARD_FILE), 'utf8');
    const front = parse(card.split('---\n')[1] ?? '') as { radfed: Record<string, unknown>; tags: string[] };
    expect(front.tags).toContain('conv4');
    expect(front.radfed).toMatchObject({
      architecture: 'conv4',
      federationId: fedId,
      modelVersion: 1,
      contributingSites: 2,
      totalSamples: 20,
      hePreset: 'bgv-8192',
    });
    expect(card).toMatch(/Intended use and limitations/);

    // The tfjs export comes from the copy decrypted above, and tf.loadLayersModel reads it.
    const tfjsDir = join(dir, 'model-tfjs');
    const second = await agent('hospital-a', '--format', 'tfjs', '--out', tfjsDir);
    expect(second.code, second.out).toBe(0);
    expect(second.out).toMatch(/from the copy decrypted here/);
    const json = JSON.parse(readFileSync(join(tfjsDir, 'model.json'), 'utf8'));
    const bin = readFileSync(join(tfjsDir, 'weights.bin'));
    const model = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest[0].weights,
        weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
      }),
    );
    const features = model.predict(tf.ones([2, 32, 32, 1])) as tf.Tensor;
    expect(features.shape).toEqual([2, 256]);
    const kernel = model.getLayer('conv1').getWeights()[0]!.dataSync();
    // HWIO in tfjs, OIHW in the safetensors file: the same numbers.
    expect(kernel[1 * 32 + 5]).toBe((conv1!.data as Float32Array)[5 * 9 + 1]);

    // The auditor's export, then verify-model.
    const exportPath = join(dir, 'audit.ndjson');
    const audit = await runToEnd(RADFED_BIN, [
      'audit',
      'export',
      fedId,
      '--out',
      exportPath,
      '--coordinator',
      address,
      '--pki-dir',
      pkiDir,
    ]);
    expect(audit.code, audit.out).toBe(0);
    const verify = (modelDir: string) =>
      runToEnd(RADFED_BIN, ['audit', 'verify-model', modelDir, exportPath]);
    const good = await verify(st);
    expect(good.code, good.out).toBe(0);
    expect(good.out).toMatch(/round\.sealed entry #\d+/);
    expect((await verify(tfjsDir)).code).toBe(0);

    const copy = (name: string) => {
      const to = join(dir, name);
      mkdirSync(to);
      for (const f of readdirSync(st)) writeFileSync(join(to, f), readFileSync(join(st, f)));
      return to;
    };
    const weights = copy('tampered-weights');
    const bytes = readFileSync(join(weights, 'model.safetensors'));
    bytes[bytes.length - 3] = (bytes[bytes.length - 3] ?? 0) ^ 0x01;
    writeFileSync(join(weights, 'model.safetensors'), bytes);
    const w = await verify(weights);
    expect(w.code).toBe(1);
    expect(w.out).toMatch(/model\.safetensors does not hash as the card says/);

    const prose = copy('tampered-card');
    writeFileSync(join(prose, MODEL_CARD_FILE), card.replace('from 2 sites', 'from 9 sites'));
    const p = await verify(prose);
    expect(p.code).toBe(1);
    expect(p.out).toMatch(/signature does not verify under the enrolled key of site hospital-a/);

    // A card signed by a key the federation never enrolled.
    const stranger = copy('stranger');
    const { privateKey } = generateKeyPairSync('ed25519');
    const facts = parseModelCard(card).facts;
    writeFileSync(
      join(stranger, MODEL_CARD_FILE),
      signedModelCard(
        { ...front, radfed: { ...facts, exportingSite: { siteId: 'st_stranger', siteName: 'elsewhere' } } },
        'prose\n',
        privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      ),
    );
    const s = await verify(stranger);
    expect(s.code).toBe(1);
    expect(s.out).toMatch(/site st_stranger, which is not enrolled/);

    // The coordinator gone and no decrypted copy at hospital-b (it trained from the seed): refused.
    await group.stopAll(5000);
    const away = await agent(
      'hospital-b',
      '--version',
      '1',
      '--format',
      'safetensors',
      '--out',
      join(dir, 'away'),
    );
    expect(away.code, away.out).toBe(1);
    expect(away.out).toMatch(/Cannot reach the coordinator/);
    expect(existsSync(join(dir, 'away'))).toBe(false);
  }, 1_200_000);
});
