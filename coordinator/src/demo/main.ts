/**
 * `pnpm demo`: a coordinator and three site agents as separate processes on loopback, talking gRPC
 * over mutual TLS, on embedded defaults (PGlite, in-process events, local blob files, a dev CA made
 * on first run). Three rounds of federated training on real DICOM images; a table per round.
 * Ctrl-C stops every process it started.
 */
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { RoundState } from '@radfed/proto';
import { exitWhenFlushed, quietIpServerNameWarning } from '@radfed/shared';
import { renderRound } from '../cli/format.js';
import { OperatorClient, tlsFromPkiDir } from '../cli/operator-client.js';
import { newFederationModelSpec } from '../federations/spec.js';
import { modelSpecToProto } from '../transport/convert.js';
import { COORDINATOR_BIN, enrolAndRunAgent, freePort, ProcessGroup, waitFor } from './processes.js';
import { prepareSiteData } from './sample-data.js';

quietIpServerNameWarning();

const TERMINAL = new Set([
  RoundState.ROUND_STATE_SEALED,
  RoundState.ROUND_STATE_FAILED,
  RoundState.ROUND_STATE_CANCELLED,
]);

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      dir: { type: 'string', default: '.radfed/demo' },
      deadline: { type: 'string' },
      model: { type: 'string', default: 'conv4' },
      objective: { type: 'string' },
      'input-size': { type: 'string' },
    },
  });
  // The larger encoders (resnet18, resnet50) run at 32x32 unless --input-size says otherwise, so a
  // round stays within minutes on a laptop's CPU.
  const inputSize =
    values['input-size'] !== undefined
      ? Number(values['input-size'])
      : values.model.startsWith('resnet')
        ? 32
        : undefined;
  // The ResNets' rounds (11M+ parameters to train and encrypt per site) need a longer deadline.
  const deadline = values.deadline ?? (values.model.startsWith('resnet') ? '600' : '120');
  // The same default model as `radfed federations create`: conv4 by masked reconstruction.
  const spec = newFederationModelSpec(values.model, {
    ...(values.objective ? { objective: values.objective } : {}),
    ...(inputSize !== undefined ? { inputSize } : {}),
  });
  const rounds = Number(values.rounds);
  const root = resolve(values.dir);
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  const say = (msg: string) => process.stdout.write(`[${elapsed().padStart(6)}] ${msg}\n`);

  // A fresh demo every run; the folder stays afterwards for inspection.
  rmSync(root, { recursive: true, force: true });
  const group = new ProcessGroup();
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('stopping the coordinator and agents');
    await group.stopAll();
    await exitWhenFlushed(code);
  };
  process.on('SIGINT', () => void shutdown(130));
  process.on('SIGTERM', () => void shutdown(143));

  const sites = prepareSiteData(join(root, 'data'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const coordinatorDir = join(root, 'coordinator');
  const pkiDir = join(coordinatorDir, 'pki');
  say(`starting the coordinator on ${address} (PGlite, in-process events, blobs in ${coordinatorDir})`);
  const coordinator = group.start(
    'coordinator',
    COORDINATOR_BIN,
    ['--data-dir', coordinatorDir, '--port', String(port)],
    {
      logFile: join(root, 'logs/coordinator.log'),
    },
  );
  coordinator.on('exit', (code) => {
    if (!stopping) {
      say(`the coordinator exited unexpectedly (code ${code}); see ${join(root, 'logs/coordinator.log')}`);
      void shutdown(1);
    }
  });
  const op = await waitFor('the coordinator to answer', async () => {
    const c = new OperatorClient({ address, tls: tlsFromPkiDir(pkiDir) });
    await c.listFederations();
    return c;
  });

  const fed = await op.createFederation({
    name: 'demo',
    modelSpec: modelSpecToProto(spec),
    minSites: 2,
    roundDeadlineSeconds: Number(deadline),
  });
  say(
    `created federation "${fed.name}" (${fed.id}): ${spec.architecture} ${spec.inputSize}x${spec.inputSize} ${spec.objective}, quorum 2 of 3, ${fed.parameterCount} shared parameters, HE preset ${fed.hePreset?.name}`,
  );

  // Sites enrol in parallel, each with its own single-use token, as separate hospitals would.
  await Promise.all(
    sites.map(async (site) => {
      const invite = await op.inviteSite(fed.id, site.name);
      const agent = await enrolAndRunAgent(group, site, {
        address,
        caPath: join(pkiDir, 'ca.crt'),
        token: invite.token,
        stateDir: join(root, 'agents', site.name),
        logDir: join(root, 'logs'),
      });
      say(`${site.name} enrolled (keys and CSR made at the site) with ${site.description}`);
      agent.on('exit', (code) => !stopping && say(`${site.name} agent exited (code ${code})`));
    }),
  );

  const names = new Map((await op.listSites(fed.id)).map((s) => [s.id, s.name]));
  await op.scheduleRounds(fed.id, rounds);
  const encrypted = fed.hePreset?.name !== 'plaintext';
  if (encrypted) {
    // Rounds open once the key custodian (the first site to enrol) has published the HE keys.
    // Key generation is CPU-bound: allow for a loaded machine.
    const withKeys = await waitFor(
      'the HE key bundle',
      async () => {
        const f = await op.getFederation(fed.id);
        return f.heKeysPublished ? f : undefined;
      },
      300_000,
    );
    say(
      `key custodian ${names.get(withKeys.keyCustodianSiteId) ?? withKeys.keyCustodianSiteId} generated the HE keys and wrapped the secret key for each site; the coordinator holds public parameters only`,
    );
  }
  say(
    `scheduled ${rounds} rounds; agents train on their own images and upload ${encrypted ? 'Enc(n_i * w_i), which the coordinator adds without decrypting' : 'n_i * w_i'}`,
  );

  const printed = new Set<number>();
  await waitFor(
    `${rounds} rounds to finish`,
    async () => {
      const all = await op.listRounds(fed.id);
      for (const r of all) {
        if (TERMINAL.has(r.state) && !printed.has(r.number)) {
          printed.add(r.number);
          process.stdout.write(`\n${renderRound(r, names)}\n\n`);
        }
      }
      return all.length >= rounds && all.every((r) => TERMINAL.has(r.state)) ? all : undefined;
    },
    rounds * (Number(deadline) + 60) * 1000,
    500,
  );
  const all = await op.listRounds(fed.id);
  const sealed = all.filter((r) => r.state === RoundState.ROUND_STATE_SEALED).length;
  say(`done: ${sealed}/${rounds} rounds sealed; logs in ${join(root, 'logs')}`);
  op.close();
  await shutdown(sealed === rounds ? 0 : 1);
  return 0;
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  void exitWhenFlushed(1);
});
