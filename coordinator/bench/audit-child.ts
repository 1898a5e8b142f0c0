/**
 * One measured step of `pnpm bench:audit`, in its own process so its time and peak memory are its
 * own: `export ADDRESS PKI_DIR FEDERATION OUT` or `verify EXPORT`. Prints one JSON line.
 */
import { performance } from 'node:perf_hooks';
import { quietIpServerNameWarning } from '@radfed/shared';
import { verifyAuditExport } from '../src/audit/verify.js';
import { AuditClient, writeAuditExport } from '../src/cli/audit-export.js';
import { tlsFromPkiDir } from '../src/cli/operator-client.js';

quietIpServerNameWarning();

async function main(argv: string[]): Promise<void> {
  const [step, ...args] = argv;
  const started = performance.now();
  let result: Record<string, unknown>;
  if (step === 'export') {
    const [address, pkiDir, federation, out] = args as [string, string, string, string];
    const client = new AuditClient(address, tlsFromPkiDir(pkiDir, 'auditor'));
    try {
      result = { ...(await writeAuditExport(client, federation, out)) };
    } finally {
      client.close();
    }
  } else if (step === 'verify') {
    const report = await verifyAuditExport(args[0]!);
    result = {
      ok: report.ok,
      entries: report.entries,
      sealed: report.rounds.filter((r) => r.state === 'sealed').length,
      recomputed: report.rounds.filter((r) => r.recomputed === 'yes').length,
      firstFinding: report.findings[0]?.message,
    };
  } else {
    throw new Error(`unknown step ${step}`);
  }
  const ms = performance.now() - started;
  // maxRSS is in KiB on Linux and macOS.
  const usage = process.resourceUsage();
  const peakRssMiB = usage.maxRSS / 1024;
  // CPU of every thread of the process (HE and decoding workers included), in ms.
  const cpuMs = (usage.userCPUTime + usage.systemCPUTime) / 1000;
  process.stdout.write(`${JSON.stringify({ step, ms, cpuMs, peakRssMiB, ...result })}\n`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
