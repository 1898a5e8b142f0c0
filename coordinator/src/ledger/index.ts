/** The provenance ledger's writer: entry kinds, appends, receipts and retention. The audit is in ../audit. */
export { hePresetHash, ledgerUpdateEncoding } from './he-preset.js';
export * from './kinds.js';
export { entryRecord, Ledger, type LedgerOptions, type LedgerSlot } from './ledger.js';
export { type IssuedReceipt, receiptFromEntry } from './receipts.js';
export { type RetentionOptions, UpdateRetention } from './retention.js';
export {
  COORDINATOR_SIGNING_KEY_FILE,
  type CoordinatorSigningKey,
  loadCoordinatorSigningKey,
} from './signing-key.js';
