export {
  listPending,
  notePending,
  type PendingReceipt,
  recoverReceipts,
  settlePending,
} from './pending-receipts.js';
export {
  listReceipts,
  type StoredReceipt,
  saveReceipt,
  storedReceipt,
  updateSigner,
} from './receipts.js';
export {
  type ReceiptCheck,
  type ReceiptsReport,
  type VerifyReceiptsOptions,
  verifyReceipts,
} from './verify-receipts.js';
