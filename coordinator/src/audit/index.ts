/**
 * The offline audit of a federation's ledger: replaying its story, checking an export file, and
 * recomputing sealed aggregates, plus the PROV-JSON lineage view. Reads what the ledger writer
 * (../ledger) wrote; the writer never depends on it.
 */
export { type AuditAggregator, aggregatorForAudit } from './audit-aggregator.js';
export { type Finding, LedgerAudit } from './ledger-audit.js';
export { type ProvDocument, provDocument } from './prov.js';
export {
  type Recomputed,
  type RoundVerdict,
  type VerifyOptions,
  type VerifyReport,
  verifyAuditExport,
} from './verify.js';
