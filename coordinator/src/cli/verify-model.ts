/**
 * `radfed audit verify-model MODEL_DIR EXPORT`: checks an exported model offline against the
 * federation's audit export. The card's signature must verify under the enrolled key of the site it
 * names (from the export's `site.enrolled` entry), the audit export must verify as a whole (hash
 * chain, signatures, recomputed aggregates), the `round.sealed` entry that produced the card's
 * model version must carry the card's aggregate digest (and be the entry the card names, if it names
 * one), the model spec and HE preset must be the federation's, and every file in MODEL_DIR must hash
 * as the card says. The auditor cannot decrypt the aggregate; the site's signature is what binds the
 * plaintext weights to it. Exit codes: 0 all hold, 1 something fails (each failure named), 2 bad
 * usage or an unreadable input.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  AuditExportFormatError,
  canonicalJson,
  MODEL_CARD_FILE,
  ModelCardFormatError,
  modelCardSignedBy,
  type ParsedModelCard,
  parseModelCard,
  readAuditExport,
  sha256Hex,
} from '@radfed/shared';
import { verifyAuditExport } from '../audit/verify.js';

export const VERIFY_MODEL_USAGE = `Usage: radfed audit verify-model MODEL_DIR EXPORT.ndjson [--json]
  check an exported model (radfed-agent model export) against an audit export, offline
`;

export interface ModelVerdict {
  ok: boolean;
  /** What holds, one sentence each. */
  checks: string[];
  /** What fails, one sentence each. */
  failures: string[];
}

class VerifyModelUsageError extends Error {
  override name = 'VerifyModelUsageError';
}

/** Runs `radfed audit verify-model ...`; returns the exit code. */
export async function verifyModelMain(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      process.stdout.write(VERIFY_MODEL_USAGE);
      return 0;
    }
    const [dir, exportPath] = positionals;
    if (!dir || !exportPath)
      throw new VerifyModelUsageError(`verify-model needs MODEL_DIR and EXPORT.\n\n${VERIFY_MODEL_USAGE}`);
    const verdict = await verifyModel(dir, exportPath);
    process.stdout.write(
      values.json
        ? `${JSON.stringify(verdict, null, 2)}\n`
        : `${verdict.checks.map((c) => `ok    ${c}\n`).join('')}${verdict.failures.map((f) => `FAIL  ${f}\n`).join('')}${
            verdict.ok
              ? 'The exported model is the one the ledger sealed, as signed by its site.\n'
              : `${verdict.failures.length} check(s) failed.\n`
          }`,
    );
    return verdict.ok ? 0 : 1;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (err instanceof VerifyModelUsageError || code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`radfed: ${(err as Error).message}\n`);
      return 2;
    }
    if (err instanceof AuditExportFormatError) {
      process.stderr.write(`radfed: ${argv[1]}: ${err.message}\n`);
      return 2;
    }
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      process.stderr.write(
        `radfed: cannot read ${(err as { path?: string }).path}: no such file or folder\n`,
      );
      return 2;
    }
    throw err;
  }
}

/** The checks described in the module comment. */
export async function verifyModel(dir: string, exportPath: string): Promise<ModelVerdict> {
  const checks: string[] = [];
  const failures: string[] = [];
  let card: ParsedModelCard;
  try {
    card = parseModelCard(await readFile(join(dir, MODEL_CARD_FILE), 'utf8'));
  } catch (err) {
    if (!(err instanceof ModelCardFormatError)) throw err;
    return { ok: false, checks, failures: [`${MODEL_CARD_FILE}: ${err.message}`] };
  }
  const { facts } = card;

  const report = await verifyAuditExport(exportPath);
  if (report.ok)
    checks.push(
      `the audit export verifies (${report.entries} entries, head ${report.headDigest.slice(0, 16)}…)`,
    );
  else
    failures.push(
      `the audit export does not verify: ${report.findings[0]?.message ?? 'see radfed audit verify'}`,
    );

  const enrolled = new Map<string, { name: string; key: string }>();
  const revoked = new Set<string>();
  let created:
    | { spec?: { modelSpec?: unknown }; specHash?: string; hePreset?: string; hePresetHash?: string }
    | undefined;
  let sealed: { index: number; digest: string; aggregateDigest: string }[] = [];
  let federationId = '';
  for await (const record of readAuditExport(exportPath)) {
    if (record.type === 'header') federationId = record.federationId;
    if (record.type !== 'entry') continue;
    const payload = JSON.parse(record.payload) as Record<string, unknown>;
    if (record.kind === 'federation.created') created = payload as typeof created;
    if (record.kind === 'site.enrolled') {
      enrolled.set(String(payload.siteId), {
        name: String(payload.siteName),
        key: String(payload.signingPublicKey),
      });
    }
    if (record.kind === 'site.revoked') revoked.add(String(payload.siteId));
    if (record.kind === 'round.sealed' && payload.resultModelVersion === facts.modelVersion) {
      sealed = [
        ...sealed,
        { index: record.index, digest: record.digest, aggregateDigest: String(payload.aggregateDigest) },
      ];
    }
  }

  if (facts.federationId === federationId)
    checks.push(`the card is for federation ${federationId}, the export's`);
  else
    failures.push(`the card is for federation ${facts.federationId}, but the export is of ${federationId}`);

  const site = enrolled.get(facts.exportingSite.siteId);
  if (site === undefined) {
    failures.push(
      `the card says it was signed by site ${facts.exportingSite.siteId}, which is not enrolled in federation ${federationId}`,
    );
  } else if (!modelCardSignedBy(card, Buffer.from(site.key, 'base64'))) {
    failures.push(
      `the card's signature does not verify under the enrolled key of site ${site.name} (${facts.exportingSite.siteId}): the card was altered or signed with another key`,
    );
  } else {
    checks.push(
      `the card is signed by site ${site.name} (${facts.exportingSite.siteId}) with its enrolled key`,
    );
    if (revoked.has(facts.exportingSite.siteId)) checks.push(`note: site ${site.name} was revoked later`);
  }

  const entry = sealed.find((s) => s.aggregateDigest === facts.aggregateDigest);
  if (entry === undefined) {
    failures.push(
      sealed.length === 0
        ? `no round.sealed entry produced model version ${facts.modelVersion}`
        : `the round.sealed entry for model version ${facts.modelVersion} (#${sealed[0]?.index}) records aggregate ${sealed[0]?.aggregateDigest.slice(0, 16)}…, not the card's ${facts.aggregateDigest.slice(0, 16)}…`,
    );
  } else if (
    facts.sealedEntry &&
    (facts.sealedEntry.index !== entry.index || facts.sealedEntry.digest !== entry.digest)
  ) {
    failures.push(
      `the card names round.sealed entry #${facts.sealedEntry.index}, but the ledger's is #${entry.index} ${entry.digest}`,
    );
  } else {
    checks.push(
      `model version ${facts.modelVersion} is round.sealed entry #${entry.index} (digest ${entry.digest}) with aggregate ${facts.aggregateDigest}`,
    );
  }

  if (created?.spec?.modelSpec !== undefined) {
    const hash = sha256Hex(canonicalJson(created.spec.modelSpec));
    if (hash === facts.modelSpecHash)
      checks.push(`the model spec is the federation's (federation spec hash ${created.specHash})`);
    else failures.push(`the card's model spec hash ${facts.modelSpecHash} is not the federation's (${hash})`);
  }
  if (
    created?.hePresetHash !== undefined &&
    facts.hePresetHash !== '' &&
    created.hePresetHash !== facts.hePresetHash
  ) {
    failures.push(
      `the card's HE preset hash ${facts.hePresetHash} is not the federation's (${created.hePresetHash})`,
    );
  }

  const present = (await readdir(dir)).filter((name) => name !== MODEL_CARD_FILE);
  for (const [name, digest] of Object.entries(facts.files)) {
    let actual: string;
    try {
      actual = sha256Hex(await readFile(join(dir, name)));
    } catch {
      failures.push(`${name} is listed on the card but missing`);
      continue;
    }
    if (actual === digest) checks.push(`${name} hashes as the card says (${digest.slice(0, 16)}…)`);
    else failures.push(`${name} does not hash as the card says: ${actual} instead of ${digest}`);
  }
  for (const name of present) if (!(name in facts.files)) failures.push(`${name} is not listed on the card`);

  return { ok: failures.length === 0, checks, failures };
}
