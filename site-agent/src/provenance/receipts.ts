/**
 * The site's receipts: the coordinator's signed acknowledgement of each update it accepted, kept in
 * the state directory (`receipts/<round id>.json`) so the site can later show, from a published
 * audit export, that the ledger records exactly what it submitted.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signUpdate } from '@radfed/shared';
import { z } from 'zod';
import { AgentStateError } from '../errors.js';
import { atomicWrite } from '../state/agent-state.js';
import type { UpdateReceipt } from '../transport/convert.js';
import type { UpdateSigner } from '../transport/site-client.js';

const storedReceiptSchema = z.object({
  federationId: z.string(),
  roundId: z.string(),
  roundNumber: z.number().int(),
  siteId: z.string(),
  modelVersion: z.number().int(),
  /** Hex SHA-256 of the update as uploaded. */
  updateDigest: z.string(),
  datasetCommitment: z.string(),
  sampleCount: z.number().int(),
  metrics: z.record(z.string(), z.number()),
  acceptedAt: z.string(),
  ledgerIndex: z.number().int(),
  /** The coordinator's Ed25519 signature over the receipt, base64. */
  coordinatorSignature: z.string(),
});

/** One receipt as the agent keeps it: the coordinator's receipt plus what the site signed. */
export type StoredReceipt = z.infer<typeof storedReceiptSchema>;

/** A signer over the site's enrolled Ed25519 key (signing.key in the state directory). */
export function updateSigner(signingKeyPem: string): UpdateSigner {
  return (facts) => signUpdate(signingKeyPem, facts);
}

/** The receipt to keep for an accepted upload. */
export function storedReceipt(
  receipt: UpdateReceipt,
  facts: Omit<
    StoredReceipt,
    'siteId' | 'acceptedAt' | 'ledgerIndex' | 'coordinatorSignature' | 'updateDigest'
  >,
): StoredReceipt {
  return {
    ...facts,
    siteId: receipt.siteId,
    updateDigest: receipt.updateDigest.toString('hex'),
    acceptedAt: receipt.acceptedAt.toISOString(),
    ledgerIndex: receipt.ledgerIndex,
    coordinatorSignature: receipt.coordinatorSignature.toString('base64'),
  };
}

const dirOf = (stateDir: string) => join(stateDir, 'receipts');

/** Writes a receipt (atomically; a re-issued receipt for the same round replaces the first). */
export async function saveReceipt(stateDir: string, receipt: StoredReceipt): Promise<void> {
  await mkdir(dirOf(stateDir), { recursive: true, mode: 0o700 });
  const name = `${receipt.roundId.replace(/[^A-Za-z0-9_-]/g, '_')}.json`;
  await atomicWrite(join(dirOf(stateDir), name), `${JSON.stringify(receipt, null, 2)}\n`, 0o600);
}

/** Every receipt kept in the state directory, by ledger index. */
export async function listReceipts(stateDir: string): Promise<StoredReceipt[]> {
  const dir = dirOf(stateDir);
  if (!existsSync(dir)) return [];
  const out: StoredReceipt[] = [];
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.json')).sort()) {
    const path = join(dir, name);
    try {
      out.push(storedReceiptSchema.parse(JSON.parse(await readFile(path, 'utf8'))));
    } catch (cause) {
      throw new AgentStateError(`${path} is not a receipt this agent wrote; move it out of ${dir}.`, {
        cause,
      });
    }
  }
  return out.sort((a, b) => a.ledgerIndex - b.ledgerIndex);
}
