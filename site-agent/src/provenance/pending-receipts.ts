/**
 * Receipts the site is owed. Before each upload the agent notes the facts it is about to submit
 * (`receipts/pending/<round id>.json`); the receipt replaces the note when the coordinator answers.
 * A note left behind means the answer never came (the agent or the coordinator died, or the
 * connection broke, after the update may have been committed): on its next connection the agent
 * asks the coordinator's ledger for that receipt ({@link recoverReceipts}).
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@radfed/shared';
import { z } from 'zod';
import { atomicWrite } from '../state/agent-state.js';
import type { UpdateReceipt } from '../transport/convert.js';
import { saveReceipt, storedReceipt } from './receipts.js';

const pendingSchema = z.object({
  federationId: z.string(),
  roundId: z.string(),
  roundNumber: z.number().int(),
  modelVersion: z.number().int(),
  datasetCommitment: z.string(),
  sampleCount: z.number().int(),
  metrics: z.record(z.string(), z.number()),
});

/** What the site submitted in a round, as its receipt will record it. */
export type PendingReceipt = z.infer<typeof pendingSchema>;

const dirOf = (stateDir: string) => join(stateDir, 'receipts', 'pending');
const fileOf = (stateDir: string, roundId: string) =>
  join(dirOf(stateDir), `${roundId.replace(/[^A-Za-z0-9_-]/g, '_')}.json`);

/** Notes an upload about to be sent (atomically; a re-send replaces the note). */
export async function notePending(stateDir: string, pending: PendingReceipt): Promise<void> {
  await mkdir(dirOf(stateDir), { recursive: true, mode: 0o700 });
  await atomicWrite(fileOf(stateDir, pending.roundId), `${JSON.stringify(pending, null, 2)}\n`, 0o600);
}

/** Keeps the receipt for a noted upload and drops the note. */
export async function settlePending(
  stateDir: string,
  pending: PendingReceipt,
  receipt: UpdateReceipt,
): Promise<void> {
  await saveReceipt(stateDir, storedReceipt(receipt, pending));
  await rm(fileOf(stateDir, pending.roundId), { force: true });
}

/** Every noted upload still waiting for its receipt. Unreadable notes are skipped (and kept). */
export async function listPending(stateDir: string): Promise<PendingReceipt[]> {
  const dir = dirOf(stateDir);
  if (!existsSync(dir)) return [];
  const out: PendingReceipt[] = [];
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.json')).sort()) {
    const parsed = pendingSchema.safeParse(safeJson(await readFile(join(dir, name), 'utf8')));
    if (parsed.success) out.push(parsed.data);
  }
  return out;
}

/**
 * Asks the coordinator for the receipt of every noted upload. A receipt found is kept; a round in
 * which the ledger records no accepted update of this site drops its note (nothing was committed,
 * and an open round sends the task again). Errors reaching the coordinator keep the notes for the
 * next connection.
 *
 * @returns the receipts recovered.
 */
export async function recoverReceipts(
  stateDir: string,
  client: { getReceipt(roundId: string): Promise<UpdateReceipt | undefined> },
  log: Logger,
): Promise<UpdateReceipt[]> {
  const recovered: UpdateReceipt[] = [];
  for (const pending of await listPending(stateDir)) {
    let receipt: UpdateReceipt | undefined;
    try {
      receipt = await client.getReceipt(pending.roundId);
    } catch (err) {
      log.warn(
        `could not ask for the receipt of round ${pending.roundNumber}: ${(err as Error).message}; asking again on the next connection`,
      );
      continue;
    }
    if (receipt) {
      await settlePending(stateDir, pending, receipt);
      recovered.push(receipt);
      log.info(
        `round ${pending.roundNumber}: fetched the receipt of the update accepted before the answer was lost (ledger entry #${receipt.ledgerIndex})`,
      );
    } else {
      await rm(fileOf(stateDir, pending.roundId), { force: true });
      log.info(`round ${pending.roundNumber}: the coordinator holds no accepted update of this site`);
    }
  }
  return recovered;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
