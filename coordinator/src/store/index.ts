export {
  type DatabaseHandle,
  type DatabaseOptions,
  type Db,
  type Executor,
  openDatabase,
  type Tx,
} from './client.js';
export type { FederationRow, ModelVersionRow } from './queries/federations.js';
export * as federationQueries from './queries/federations.js';
export type { LedgerEntryRow } from './queries/ledger.js';
export * as ledgerQueries from './queries/ledger.js';
export * as outboxQueries from './queries/outbox.js';
export type { ParticipantRow, RoundRow, UploadRow } from './queries/rounds.js';
export * as roundQueries from './queries/rounds.js';
export type { EnrolmentTokenRow, SiteRow } from './queries/sites.js';
export * as siteQueries from './queries/sites.js';
export * as tables from './schema.js';
