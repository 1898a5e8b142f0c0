/**
 * `radfed audit ...`: the auditor's commands. `export` reads through AuditService with the auditor's
 * certificate (read-only); `verify` works offline on an export file and holds no key at all.
 * Exit codes: 0 everything holds, 1 verification failed or the coordinator refused, 2 bad usage or an
 * unreadable file.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AuditExportFormatError, parseSigningPublicKey } from '@radfed/shared';
import { type VerifyReport, verifyAuditExport } from '../audit/verify.js';
import { UsageError as AuditUsageError } from '../errors.js';
import { AuditClient, writeAuditExport, writeProvExport } from './audit-export.js';
import { table } from './format.js';
import { tlsFromPkiDir } from './operator-client.js';
import { verifyModelMain } from './verify-model.js';

export const AUDIT_USAGE = `Usage: radfed audit <command> [options]

Commands:
  audit export FEDERATION [--out FILE] [--format ndjson|prov]
        write the federation's ledger, certificates and stored updates to one file (default
        FEDERATION-audit.ndjson), or its lineage as W3C PROV-JSON (default FEDERATION-prov.json)
  audit verify EXPORT [--coordinator-key FILE|BASE64] [--json]
        check an export offline: hash chain, every signature, every sealed round's aggregate
        recomputed from its updates; prints a table per round; exit 0 only if everything holds
  audit verify-model MODEL_DIR EXPORT [--json]
        check a model exported by a site (radfed-agent model export): its card's signature by the
        site's enrolled key, its round.sealed entry and aggregate digest, every file's hash
  audit head FEDERATION
        the ledger's head (index and digest), to compare with what others saw

Options:
  --coordinator HOST:PORT  (RADFED_COORDINATOR, default 127.0.0.1:7443)
  --pki-dir DIR            ca.crt + auditor.crt/.key (RADFED_PKI_DIR, default .radfed/coordinator/pki)
  --coordinator-key K      the coordinator's ledger key as obtained out of band (PEM file, PEM or
                           base64 raw key); without it verify uses the key in the export and prints
                           its fingerprint for you to compare
`;

/** Runs one `radfed audit` command; returns the exit code. */
export async function auditMain(argv: string[]): Promise<number> {
  if (argv[0] === 'verify-model') return verifyModelMain(argv.slice(1));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      coordinator: { type: 'string' },
      'pki-dir': { type: 'string' },
      out: { type: 'string' },
      format: { type: 'string', default: 'ndjson' },
      'coordinator-key': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [verb, target] = positionals;
  if (values.help || !verb) {
    process.stdout.write(AUDIT_USAGE);
    return values.help ? 0 : 2;
  }
  if (!target) throw new AuditUsageError(`audit ${verb} needs an argument.\n\n${AUDIT_USAGE}`);

  if (verb === 'verify') {
    const pinned = values['coordinator-key'] ? readKey(values['coordinator-key']) : undefined;
    let report: VerifyReport;
    try {
      report = await verifyAuditExport(target, pinned ? { coordinatorKey: pinned } : {});
    } catch (err) {
      if (err instanceof AuditExportFormatError) throw new AuditUsageError(`${target}: ${err.message}`);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new AuditUsageError(`No such file: ${target}`);
      throw err;
    }
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderVerifyReport(report));
    return report.ok ? 0 : 1;
  }

  const client = new AuditClient(values.coordinator ?? process.env.RADFED_COORDINATOR ?? '127.0.0.1:7443', {
    ...tlsFromPkiDir(values['pki-dir'] ?? process.env.RADFED_PKI_DIR ?? '.radfed/coordinator/pki', 'auditor'),
  });
  try {
    switch (verb) {
      case 'export': {
        if (values.format === 'prov') {
          const out = values.out ?? `${target}-prov.json`;
          const r = await writeProvExport(client, target, out);
          process.stdout.write(
            `Wrote the lineage of ${r.entries} ledger entries as W3C PROV-JSON to ${r.path}.\n`,
          );
          return 0;
        }
        if (values.format !== 'ndjson') {
          throw new AuditUsageError(`--format is ndjson or prov, not "${values.format}".`);
        }
        const s = await writeAuditExport(client, target, values.out ?? `${target}-audit.ndjson`);
        process.stdout.write(
          `Exported ${s.federationName} (${s.federationId}): ${s.entries} ledger entries, ${s.updates} stored updates` +
            `${s.absent ? `, ${s.absent} no longer held` : ''}, ${(s.bytes / 2 ** 20).toFixed(1)} MiB to ${s.path}.\n` +
            (s.unreadable.length > 0
              ? `Note: entries whose payload is not JSON were exported as stored, and verify will name them: ${s.unreadable.map((i) => `#${i}`).join(', ')}.\n`
              : '') +
            `Check it offline with: radfed audit verify ${s.path}\n`,
        );
        return 0;
      }
      case 'head': {
        const h = await client.head(target);
        process.stdout.write(
          values.json
            ? `${JSON.stringify({ federationId: h.federationId, entries: Number(h.entryCount), index: Number(h.index), digest: h.digest.toString('hex') })}\n`
            : `${h.federationName} (${h.federationId}): ${h.entryCount} entries, head #${h.index} ${h.digest.toString('hex')}\n`,
        );
        return 0;
      }
      default:
        throw new AuditUsageError(`Unknown command "audit ${verb}".\n\n${AUDIT_USAGE}`);
    }
  } finally {
    client.close();
  }
}

/** The pinned key: a PEM file, PEM text or base64 of the raw key. */
function readKey(arg: string): Buffer {
  let text = arg;
  if (!arg.includes('BEGIN') && !/^[A-Za-z0-9+/]{43}=$/.test(arg)) {
    try {
      text = readFileSync(arg, 'utf8');
    } catch {
      throw new AuditUsageError(`--coordinator-key: cannot read ${arg}, and it is not a base64 key either.`);
    }
  }
  try {
    return parseSigningPublicKey(text);
  } catch (err) {
    throw new AuditUsageError(`--coordinator-key is not an Ed25519 public key: ${(err as Error).message}`);
  }
}

/** The verify report for a person: a line on the key, a table per round, then the verdict. */
export function renderVerifyReport(r: VerifyReport): string {
  const lines: string[] = [];
  lines.push(
    `Federation ${r.federationName} (${r.federationId}): ${r.entries} ledger entries, head ${r.headDigest.slice(0, 16)}…`,
  );
  lines.push(
    `Coordinator ledger key: sha256 ${r.coordinatorKeyFingerprint} ` +
      (r.keyPinned
        ? '(pinned with --coordinator-key)'
        : '(taken from the export; compare it, or pin it with --coordinator-key)'),
  );
  lines.push('');
  const aggregate = {
    yes: 'recomputed',
    pruned: 'pruned',
    missing: 'MISSING',
    mismatch: 'MISMATCH',
    'n/a': '-',
  };
  lines.push(
    table(
      ['round', 'state', 'model', 'sites', 'samples', 'aggregate', 'ok', 'note'],
      r.rounds.map((x) => [
        x.number,
        x.state,
        x.resultModelVersion !== undefined
          ? `v${x.modelVersion}->v${x.resultModelVersion}`
          : `v${x.modelVersion}`,
        `${x.accepted}/${x.invited}`,
        x.samples,
        aggregate[x.recomputed],
        x.ok ? 'yes' : 'NO',
        x.note,
      ]),
    ),
  );
  lines.push('');
  const sealed = r.rounds.filter((x) => x.state === 'sealed');
  const recomputed = sealed.filter((x) => x.recomputed === 'yes').map((x) => x.number);
  const pruned = sealed.filter((x) => x.recomputed === 'pruned').map((x) => x.number);
  lines.push(
    `Aggregates recomputed exactly for ${recomputed.length} of ${sealed.length} sealed rounds` +
      (recomputed.length ? ` (${ranges(recomputed)})` : '') +
      (pruned.length ? `; not recomputable, updates deleted by retention: ${ranges(pruned)}` : '') +
      '.',
  );
  if (r.ok) {
    lines.push(
      `OK: the chain of ${r.entries} entries holds, every signature verifies, every accepted update was signed by an enrolled, unrevoked site.`,
    );
  } else {
    const [first, ...rest] = r.findings;
    lines.push(`FAILED at ${where(first!)}: ${first!.message}`);
    for (const f of rest.slice(0, 9)) lines.push(`  also ${where(f)}: ${f.message}`);
    if (rest.length > 9) lines.push(`  and ${rest.length - 9} more (see --json)`);
  }
  return `${lines.join('\n')}\n`;
}

function where(f: { index: number | undefined; kind: string | undefined }): string {
  if (f.index === undefined) return 'the export file';
  return f.kind ? `entry #${f.index} (${f.kind})` : `entry #${f.index}`;
}

/** "1-3, 5, 7-9" from sorted round numbers. */
function ranges(ns: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ns.length; ) {
    let j = i;
    while (j + 1 < ns.length && ns[j + 1] === ns[j]! + 1) j++;
    out.push(i === j ? `${ns[i]}` : `${ns[i]}-${ns[j]}`);
    i = j + 1;
  }
  return out.join(', ');
}
