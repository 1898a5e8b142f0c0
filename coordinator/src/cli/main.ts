/**
 * `radfed`: the operator's CLI. Tables by default, `--json` for scripts.
 * Exit codes: 0 ok, 1 the coordinator refused or failed the call, 2 bad usage or configuration.
 */
import { ParticipationState, RoundState, RpcError } from '@radfed/proto';
import { type CliFailure, quietIpServerNameWarning, runCli } from '@radfed/shared';
import { dashboardCommand, dashboardMain } from '../dashboard/cli.js';
import { ConfigError, UsageError } from '../errors.js';
import {
  DEFAULT_CONV4_OBJECTIVE,
  DEFAULT_HE_PRESET,
  FEDERATION_DEFAULTS,
  newFederationModelSpec,
} from '../federations/spec.js';
import { numberOption, parseRadfedArgs, type Values } from './args.js';
import { auditMain } from './audit.js';
import {
  ago,
  renderRound,
  roundJson,
  roundStateName,
  seconds,
  siteJson,
  siteStateName,
  table,
  toJson,
} from './format.js';
import { OperatorClient, tlsFromPkiDir } from './operator-client.js';

quietIpServerNameWarning();

const D = FEDERATION_DEFAULTS;
const USAGE = `Usage: radfed <command> [options]

Commands:
  federations create NAME [--min-sites N] [--deadline SECONDS] [--max-samples N]
                          [--model conv4|dense-ae-32] [--objective simclr|masked-reconstruction]
                          [--epochs N] [--learning-rate X] [--batch-size N]
                          [--he-preset bgv-8192|ckks-8192|plaintext] [--max-sites N] [--max-abs-weight X]
  federations list
  sites invite FEDERATION SITE_NAME [--ttl SECONDS]    prints a single-use enrolment token
  sites list FEDERATION                                 sites, connection and last contact
  sites revoke SITE_ID [--reason TEXT]
  sites custodian FEDERATION SITE                       the site that makes (or later re-wraps) the HE keys
  rounds schedule FEDERATION [--count N]                rounds run back to back
  rounds list FEDERATION
  rounds watch FEDERATION [--exit-when-idle]            live progress of rounds
  rounds cancel ROUND_ID [--reason TEXT]
  audit export FEDERATION [--out FILE] [--format prov]  self-contained audit file (auditor certificate)
  audit verify EXPORT [--coordinator-key KEY]           offline check; \`radfed audit --help\` for more
  dashboard [--port P]                                  the dashboard in a browser (127.0.0.1, URL with a token)
  audit dashboard EXPORT [--port P]                     the same, offline, over an audit export
  simulate --sites N [--rounds N] [--seed N] [--he-preset NAME] [--export FILE] [--json]
                                                        a federation in one process; \`radfed simulate --help\`

federations create defaults: conv4 trained by ${DEFAULT_CONV4_OBJECTIVE}, quorum ${D.minSites}, deadline ${D.roundDeadlineSeconds} s,
${D.maxSamplesPerSite} samples per site, HE preset ${DEFAULT_HE_PRESET}, up to max(${D.maxSites}, quorum) sites, weights within ±${D.maxAbsWeight}.

Options (anywhere on the line, before or after the command):
  --coordinator HOST:PORT  (RADFED_COORDINATOR, default 127.0.0.1:7443)
  --pki-dir DIR            ca.crt + operator.crt/.key (RADFED_PKI_DIR, default .radfed/coordinator/pki)
  --json                   machine-readable output, states by name; an error is one
                           {"code","message"} object on stderr, with the same exit code
`;

async function main(argv: string[]): Promise<number> {
  const dashboard = dashboardCommand(argv);
  if (dashboard) return dashboardMain(dashboard);
  const parsed = parseRadfedArgs(argv);
  // The auditor's commands parse their own options and need no operator certificate.
  if (parsed.kind === 'audit') return auditMain(parsed.argv);
  // Outside src/: it plays the sites too, so it holds HE secret keys (see coordinator/simulate/).
  if (parsed.kind === 'simulate') return (await import('../../simulate/main.js')).simulateMain(parsed.argv);
  if (parsed.kind === 'help') {
    process.stdout.write(USAGE);
    return parsed.values.help ? 0 : 2;
  }
  const { command, values, args } = parsed;
  const need = (i: number, what: string): string => {
    const v = args[i];
    if (!v) throw new UsageError(`radfed ${command} needs ${what}.\n\n${USAGE}`);
    return v;
  };
  const integer = (name: keyof Values & string) =>
    numberOption(name, values[name] as string | undefined, true);
  const decimal = (name: keyof Values & string) => numberOption(name, values[name] as string | undefined);
  const client = new OperatorClient({
    address: values.coordinator ?? process.env.RADFED_COORDINATOR ?? '127.0.0.1:7443',
    tls: tlsFromPkiDir(values['pki-dir'] ?? process.env.RADFED_PKI_DIR ?? '.radfed/coordinator/pki'),
  });
  const out = (json: unknown, text: () => string) =>
    process.stdout.write(`${values.json ? toJson(json) : text()}\n`);
  try {
    switch (command) {
      case 'federations create': {
        const spec = newFederationModelSpec(values.model, {
          ...(values.objective ? { objective: values.objective } : {}),
          ...(values.epochs ? { localEpochs: integer('epochs')! } : {}),
          ...(values['learning-rate'] ? { learningRate: decimal('learning-rate')! } : {}),
          ...(values['batch-size'] ? { batchSize: integer('batch-size')! } : {}),
        });
        const { modelSpecToProto } = await import('../transport/convert.js');
        const fed = await client.createFederation({
          name: need(0, 'federation NAME'),
          modelSpec: modelSpecToProto(spec),
          minSites: integer('min-sites') ?? 0,
          roundDeadlineSeconds: integer('deadline') ?? 0,
          maxSamplesPerSite: integer('max-samples') ?? 0,
          hePreset: values['he-preset'] ?? '',
          maxSites: integer('max-sites') ?? 0,
          maxAbsWeight: decimal('max-abs-weight') ?? 0,
        });
        out(
          fed,
          () =>
            `Created federation ${fed.name} (${fed.id}): quorum ${fed.minSites}, deadline ${fed.roundDeadlineSeconds}s, ${fed.parameterCount} shared parameters, HE preset ${fed.hePreset?.name} (up to ${fed.maxSites} sites, weights within ±${fed.maxAbsWeight}).`,
        );
        return 0;
      }
      case 'sites custodian': {
        const fed = await client.setKeyCustodian(need(0, 'FEDERATION'), need(1, 'SITE'));
        out(fed, () => `Key custodian of ${fed.name} is now site ${fed.keyCustodianSiteId}.`);
        return 0;
      }
      case 'federations list': {
        const feds = await client.listFederations();
        out(feds, () =>
          table(
            ['id', 'name', 'quorum', 'deadline', 'model version', 'parameters'],
            feds.map((f) => [
              f.id,
              f.name,
              f.minSites,
              `${f.roundDeadlineSeconds}s`,
              Number(f.currentModelVersion),
              f.parameterCount,
            ]),
          ),
        );
        return 0;
      }
      case 'sites invite': {
        const inv = await client.inviteSite(need(0, 'FEDERATION'), need(1, 'SITE_NAME'), integer('ttl') ?? 0);
        out(
          inv,
          () =>
            `Enrolment token for ${inv.siteName} (single use, expires ${inv.expiresAt?.toISOString()}):\n${inv.token}\n\n` +
            `At the site: radfed-agent enrol --coordinator HOST:PORT --ca ca.crt --token ${inv.token}`,
        );
        return 0;
      }
      case 'sites list': {
        const sites = await client.listSites(need(0, 'FEDERATION'));
        out(sites.map(siteJson), () =>
          table(
            ['id', 'name', 'state', 'connected', 'last contact'],
            sites.map((s) => [
              s.id,
              s.name,
              siteStateName(s.state),
              s.connected ? 'yes' : 'no',
              ago(s.lastSeenAt),
            ]),
          ),
        );
        return 0;
      }
      case 'sites revoke': {
        const site = await client.revokeSite(need(0, 'SITE_ID'), values.reason ?? '');
        out(siteJson(site), () => `Revoked ${site.name} (${site.id}).`);
        return 0;
      }
      case 'rounds schedule': {
        const rounds = await client.scheduleRounds(need(0, 'FEDERATION'), integer('count') ?? 1);
        out(
          rounds.map(roundJson),
          () =>
            `Scheduled rounds ${rounds.map((r) => r.number).join(', ')}; each opens when the one before it closes.`,
        );
        return 0;
      }
      case 'rounds list': {
        const rounds = await client.listRounds(need(0, 'FEDERATION'));
        out(rounds.map(roundJson), () =>
          table(
            ['#', 'id', 'state', 'sites', 'samples', 'model', 'duration', 'note'],
            rounds.map((r) => [
              r.number,
              r.id,
              roundStateName(r.state),
              `${r.participants.filter((p) => p.state === ParticipationState.PARTICIPATION_STATE_SUBMITTED).length}/${r.participants.length}`,
              Number(r.totalSamples),
              r.state === RoundState.ROUND_STATE_SEALED ? `v${r.resultModelVersion}` : '-',
              seconds(r.openedAt, r.closedAt),
              r.failureReason,
            ]),
          ),
        );
        return 0;
      }
      case 'rounds watch': {
        const fed = need(0, 'FEDERATION');
        const names = new Map((await client.listSites(fed)).map((s) => [s.id, s.name]));
        const ac = new AbortController();
        process.once('SIGINT', () => ac.abort());
        const idle = async () =>
          (await client.listRounds(fed)).every(
            (r) =>
              r.state !== RoundState.ROUND_STATE_SCHEDULED &&
              r.state !== RoundState.ROUND_STATE_OPEN &&
              r.state !== RoundState.ROUND_STATE_SEALING,
          );
        if (values['exit-when-idle'] && (await idle())) return 0;
        await client.watchRounds(
          fed,
          (u) => {
            const r = u.round!;
            if (values.json) {
              process.stdout.write(`${JSON.stringify(JSON.parse(toJson({ ...u, round: roundJson(r) })))}\n`);
            } else if (
              u.event === 'round.sealed' ||
              u.event === 'round.failed' ||
              u.event === 'round.cancelled'
            ) {
              process.stdout.write(`${renderRound(r, names)}\n\n`);
            } else {
              const done = r.participants.filter(
                (p) => p.state !== ParticipationState.PARTICIPATION_STATE_INVITED,
              ).length;
              process.stdout.write(
                `round ${r.number} ${roundStateName(r.state)}: ${done}/${r.participants.length} sites answered (${u.event})\n`,
              );
            }
            if (values['exit-when-idle'] && u.event !== 'round.update_accepted') {
              void idle().then((yes) => yes && ac.abort());
            }
          },
          ac.signal,
        );
        return 0;
      }
      case 'rounds cancel': {
        const r = await client.cancelRound(need(0, 'ROUND_ID'), values.reason ?? '');
        out(roundJson(r), () => `Round ${r.number} is ${roundStateName(r.state)}.`);
        return 0;
      }
    }
  } finally {
    client.close();
  }
}

/** Exit 1 when the coordinator refused or failed the call; 2 for anything wrong on this side. */
function radfedFailure(err: unknown): CliFailure {
  if (err instanceof RpcError)
    return { exitCode: 1, code: err.codeName, message: `${err.codeName}: ${err.message}` };
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof UsageError) return { exitCode: 2, code: 'USAGE', message };
  if (err instanceof ConfigError) return { exitCode: 2, code: 'CONFIG', message };
  return { exitCode: 2, code: 'ERROR', message };
}

const argv = process.argv.slice(2);
await runCli(() => main(argv), { program: 'radfed', argv, failure: radfedFailure });
