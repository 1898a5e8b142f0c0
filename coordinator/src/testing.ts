/**
 * Internals for this repository's contract and end-to-end suites only (`@radfed/coordinator/testing`).
 * Not a public API.
 */
export { PlaintextAggregator } from './aggregation/plaintext.js';
export { PresetAggregators, singleAggregator } from './aggregation/registry.js';
export * from './audit/index.js';
export * from './blobs/index.js';
export { AuditClient, writeAuditExport, writeProvExport } from './cli/audit-export.js';
export { renderRound } from './cli/format.js';
export {
  AGENT_BIN,
  COORDINATOR_BIN,
  enrolAndRunAgent,
  freePort,
  ProcessGroup,
  runToEnd,
  waitFor,
} from './demo/processes.js';
export { daikonDataDir, prepareSiteData } from './demo/sample-data.js';
export * from './events/index.js';
export { FederationService } from './federations/service.js';
export * from './ledger/index.js';
export { RoundEngine } from './rounds/engine.js';
export * from './rounds/states.js';
export * from './store/index.js';
export { modelSpecToProto } from './transport/convert.js';
export { createClientCredentials, createServerCredentials } from './transport/tls.js';
