/** The provenance ledger: entry kinds, appends, retention, offline verification and PROV export. */
export {
  type AuditAggregator,
  aggregatorForAudit,
  ledgerUpdateEncoding,
  UnsupportedEncodingError,
} from './audit-aggregator.js';
export { hePresetHash } from './he-preset.js';
export * from './kinds.js';
export { entryRecord, Ledger, type LedgerOptions, type LedgerSlot } from './ledger.js';
export { type Finding, LedgerAudit } from './ledger-audit.js';
export { type ProvDocument, provDocument } from './prov.js';
export { type IssuedReceipt, receiptFromEntry } from './receipts.js';
export { type RetentionOptions, UpdateRetention } from './retention.js';
export {
  COORDINATOR_SIGNING_KEY_FILE,
  type CoordinatorSigningKey,
  loadCoordinatorSigningKey,
} from './signing-key.js';
export {
  type Recomputed,
  type RoundVerdict,
  type VerifyOptions,
  type VerifyReport,
  verifyAuditExport,
} from './verify.js';
