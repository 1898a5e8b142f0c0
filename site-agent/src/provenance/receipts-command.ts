import { readFileSync } from 'node:fs';
import { keyFingerprint, parseSigningPublicKey, signingPublicKey } from '@radfed/shared';
import { loadIdentity } from '../state/agent-state.js';
import { verifyReceipts } from './verify-receipts.js';

/**
 * `radfed-agent receipts verify --export FILE`: checks every receipt this site holds against an
 * audit export (offline), prints one line per receipt, and returns the exit code (0 all backed).
 */
export async function receiptsVerifyCommand(opts: {
  stateDir: string;
  exportPath: string;
  coordinatorKey?: string | undefined;
  json: boolean;
}): Promise<number> {
  const id = await loadIdentity(opts.stateDir);
  const pinned = opts.coordinatorKey
    ? parseSigningPublicKey(
        opts.coordinatorKey.includes('BEGIN') ? opts.coordinatorKey : readKeyFile(opts.coordinatorKey),
      )
    : undefined;
  const report = await verifyReceipts(opts.stateDir, opts.exportPath, {
    signingPublicKey: signingPublicKey(id.signingKeyPem),
    siteId: id.siteId,
    ...(pinned ? { coordinatorKey: pinned } : {}),
  });
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return report.ok ? 0 : 1;
  }
  const lines = [
    `${report.checks.length} receipts of ${id.siteName} (${id.siteId}) against ${opts.exportPath}: ` +
      `federation ${report.federationId}, ${report.entries} ledger entries, coordinator key sha256 ${report.coordinatorKeyFingerprint.slice(0, 16)}…` +
      (pinned ? ` (pinned, ${keyFingerprint(pinned).slice(0, 8)})` : ''),
  ];
  for (const c of report.checks) {
    const r = c.receipt;
    lines.push(
      `  round ${r.roundNumber} (${r.roundId}) entry #${r.ledgerIndex}: ${c.problem ? `NOT BACKED: ${c.problem}` : 'in the ledger as submitted'}`,
    );
  }
  for (const m of report.missing) {
    lines.push(
      `  round ${m.roundNumber ?? '?'} (${m.roundId}) entry #${m.ledgerIndex}: NO RECEIPT: the ledger records an accepted update of this site that no receipt here names; ${
        m.signedBySite
          ? "it carries this site's signature, so the answer was lost (a crash?): start the agent with this state directory to fetch the receipt"
          : "it does not carry this site's signature: this site did not send it; tell the operator"
      }`,
    );
  }
  if (report.chainProblem) lines.push(`The ledger chain fails at ${report.chainProblem}.`);
  lines.push(
    report.ok
      ? 'OK: every receipt is in the ledger, as this site submitted it, and every accepted update of this site has its receipt.'
      : 'FAILED.',
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  return report.ok ? 0 : 1;
}

function readKeyFile(arg: string): string {
  try {
    return readFileSync(arg, 'utf8');
  } catch {
    return arg; // a base64 raw key given inline
  }
}
