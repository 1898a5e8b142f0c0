/** Where the dashboard's data comes from: a live coordinator, or an audit export read offline. */
import type { FederationDetail, FederationView } from './views.js';

/** A failure the dashboard answers with an HTTP status and one sentence for the page. */
export class DashboardError extends Error {
  override name = 'DashboardError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** One message relayed to the page as a server-sent event. */
export type LiveEvent =
  | { event: 'snapshot'; data: FederationDetail }
  | { event: 'round'; data: { event: string; round: FederationDetail['rounds'][number] } }
  | { event: 'coordinator'; data: { up: boolean; message: string } };

export interface DashboardSource {
  /** What the page shows in its header, and which pages it offers. */
  info(): { mode: 'live' | 'audit'; title: string };
  federations(): Promise<FederationView[]>;
  federation(id: string): Promise<FederationDetail>;
  /**
   * Relays the federation's live rounds to `send` until `signal` aborts, reconnecting when the
   * coordinator goes away; absent offline.
   */
  watch?(id: string, send: (e: LiveEvent) => void, signal: AbortSignal): void;
  /** The ledger and its verification; offline only. */
  audit?(): Promise<unknown>;
  close(): void;
}
