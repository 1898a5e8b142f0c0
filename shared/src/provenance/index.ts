/**
 * Provenance formats both sides must agree on byte for byte: what a site signs for an update, the
 * coordinator's receipts, ledger entry digests and the audit export file.
 */
export {
  AUDIT_EXPORT_FORMAT,
  AUDIT_EXPORT_VERSION,
  type ExportBlob,
  type ExportEnd,
  type ExportEntry,
  type ExportHeader,
  type ExportRecord,
  type ExportSite,
  exportLine,
  type ReadAuditExportOptions,
  readAuditExport,
} from './audit-export.js';
export {
  type ChainPosition,
  checkLedgerEntry,
  GENESIS_DIGEST,
  keyFingerprint,
  LEDGER_ENTRY_DOMAIN,
  type LedgerEntryRecord,
  ledgerEntryDigest,
  signLedgerDigest,
} from './ledger-entry.js';
export { parseSigningPublicKey, signingPublicKeyPem } from './public-key.js';
export { RECEIPT_DOMAIN, type ReceiptFacts, receiptMessage, signReceipt, verifyReceipt } from './receipt.js';
export {
  SIGNED_UPDATE_DOMAIN,
  type SignedUpdateFacts,
  signedUpdateMessage,
  signUpdate,
  verifyUpdateSignature,
} from './signed-update.js';
