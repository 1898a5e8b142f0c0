import {
  canonicalJson,
  GENESIS_DIGEST,
  type LedgerEntryRecord,
  ledgerEntryDigest,
  type ReceiptFacts,
  signLedgerDigest,
  signReceipt,
} from '@radfed/shared';
import { FederationNotFoundError } from '../errors.js';
import type { Executor } from '../store/client.js';
import * as ledgerQ from '../store/queries/ledger.js';
import type { LedgerEntryKind, LedgerPayloads } from './kinds.js';
import type { CoordinatorSigningKey } from './signing-key.js';

/** Where a new entry will sit, for payloads that must name it (receipts do). */
export interface LedgerSlot {
  federationId: string;
  index: number;
  /** The entry's time, as recorded in it. */
  at: Date;
}

export interface LedgerOptions {
  signingKey: CoordinatorSigningKey;
  /** Clock for entry times (tests pin it). */
  now?: () => Date;
}

/**
 * The coordinator's side of the provenance ledger: appends canonically encoded, hash-chained entries
 * signed with the coordinator's Ed25519 key, and signs receipts with the same key.
 *
 * Call {@link Ledger.append} inside the transaction that makes the state change it records, so the
 * change and its entry commit (or vanish) together. Appends to one federation serialise on its
 * chain lock, so every index is taken once and each entry links to the one committed before it.
 *
 * Security: the private key stays in this process (loaded from the PKI directory); entries and
 * receipts carry only signatures. The ledger holds digests and metadata, never update plaintext.
 */
export class Ledger {
  private readonly now: () => Date;

  constructor(private readonly opts: LedgerOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  /** The raw 32-byte public key that verifies entries and receipts. */
  get publicKey(): Buffer {
    return this.opts.signingKey.publicKeyRaw;
  }

  /**
   * Appends one entry to the federation's chain. `payload` may be a function of the entry's slot
   * (index and time), for facts that name their own entry.
   *
   * @param tx a transaction (the chain lock lasts until it ends).
   * @throws FederationNotFoundError when the federation does not exist (in this transaction).
   */
  async append<K extends LedgerEntryKind>(
    tx: Executor,
    federationId: string,
    kind: K,
    payload: LedgerPayloads[K] | ((slot: LedgerSlot) => LedgerPayloads[K]),
  ): Promise<LedgerEntryRecord> {
    if (!(await ledgerQ.lockChain(tx, federationId))) throw new FederationNotFoundError(federationId);
    const last = await ledgerQ.head(tx, federationId);
    const slot: LedgerSlot = { federationId, index: last ? last.index + 1 : 0, at: this.now() };
    const facts = typeof payload === 'function' ? payload(slot) : payload;
    const unsigned = {
      federationId,
      index: slot.index,
      kind,
      payload: canonicalJson(facts),
      previousDigest: last?.digest ?? GENESIS_DIGEST,
      createdAt: slot.at.toISOString(),
    };
    const digest = ledgerEntryDigest(unsigned);
    const entry: LedgerEntryRecord = {
      ...unsigned,
      digest,
      signature: signLedgerDigest(this.opts.signingKey.privateKeyPem, digest),
    };
    await ledgerQ.insertEntry(tx, {
      federationId,
      index: entry.index,
      kind,
      payload: entry.payload,
      previousDigest: entry.previousDigest,
      digest,
      signature: entry.signature,
      createdAt: slot.at,
    });
    return entry;
  }

  /** Signs a receipt; returns the signature, base64. */
  signReceipt(facts: ReceiptFacts): string {
    return signReceipt(this.opts.signingKey.privateKeyPem, facts).toString('base64');
  }
}

/** A stored row as the record the shared verifier checks. */
export function entryRecord(row: ledgerQ.LedgerEntryRow): LedgerEntryRecord {
  return {
    federationId: row.federationId,
    index: row.index,
    kind: row.kind,
    payload: row.payload,
    previousDigest: row.previousDigest,
    digest: row.digest,
    signature: row.signature,
    createdAt: row.createdAt.toISOString(),
  };
}
