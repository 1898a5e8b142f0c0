/**
 * The live source: the coordinator's OperatorService over gRPC with the operator's certificate,
 * exactly what `radfed` itself calls. Live rounds come from one WatchRounds stream per open page;
 * when it breaks the source says so and opens it again with a growing pause, never polling.
 */
import { type Round, RpcError } from '@radfed/proto';
import type { OperatorClient } from '../cli/operator-client.js';
import { DashboardError, type DashboardSource, type LiveEvent } from './source.js';
import { type FederationDetail, federationView, roundView, siteViews } from './views.js';

/** Pauses before reopening a broken WatchRounds stream, in ms; the last one repeats. */
const RETRY_MS = [500, 1000, 2000, 5000];

export class LiveSource implements DashboardSource {
  constructor(
    private readonly client: OperatorClient,
    private readonly address: string,
    private readonly retryMs: readonly number[] = RETRY_MS,
  ) {}

  info() {
    return { mode: 'live' as const, title: `coordinator ${this.address}` };
  }

  async federations() {
    return this.call(async () => {
      const feds = await this.client.listFederations();
      return feds.map((f) => federationView(f, new Map()));
    });
  }

  async federation(id: string): Promise<FederationDetail> {
    return this.call(async () => {
      const [fed, sites, rounds] = await Promise.all([
        this.client.getFederation(id),
        this.client.listSites(id),
        this.client.listRounds(id),
      ]);
      const names = new Map(sites.map((s) => [s.id, s.name]));
      return {
        federation: federationView(fed, names),
        sites: siteViews(sites, rounds),
        rounds: rounds.map((r) => roundView(r, names)),
      };
    });
  }

  watch(id: string, send: (e: LiveEvent) => void, signal: AbortSignal): void {
    let attempt = 0;
    let names = new Map<string, string>();
    const down = (message: string) => send({ event: 'coordinator', data: { up: false, message } });
    const loop = async () => {
      while (!signal.aborted) {
        // One controller per attempt, so listeners on `signal` do not pile up over reconnects.
        const attemptAc = new AbortController();
        const stop = () => attemptAc.abort();
        signal.addEventListener('abort', stop);
        const watching = this.client.watchRounds(
          id,
          (u) => {
            const r = u.round as Round;
            if (r.participants.some((p) => !names.has(p.siteId))) {
              // A site enrolled since the snapshot: learn its name for the next updates.
              this.client.listSites(id).then(
                (sites) => {
                  names = new Map(sites.map((s) => [s.id, s.name]));
                },
                () => {},
              );
            }
            send({ event: 'round', data: { event: u.event, round: roundView(r, names) } });
          },
          attemptAc.signal,
        );
        watching.catch(() => {});
        try {
          // Live once the snapshot taken after the stream opened answers: nothing between is missed.
          const snapshot = await this.federation(id);
          names = new Map(snapshot.sites.map((s) => [s.id, s.name]));
          attempt = 0;
          send({ event: 'coordinator', data: { up: true, message: '' } });
          send({ event: 'snapshot', data: snapshot });
          await watching;
          if (!signal.aborted) down('The coordinator ended the live stream; reconnecting.');
        } catch (err) {
          if (!signal.aborted) {
            const e = err instanceof DashboardError ? err : this.explain(err);
            down(e.message);
            if (e.status === 404) return;
          }
        } finally {
          attemptAc.abort();
          signal.removeEventListener('abort', stop);
        }
        if (signal.aborted) return;
        const pause = this.retryMs[Math.min(attempt++, this.retryMs.length - 1)]!;
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(t);
            signal.removeEventListener('abort', done);
            resolve();
          };
          const t = setTimeout(done, pause);
          signal.addEventListener('abort', done);
        });
      }
    };
    void loop();
  }

  close(): void {
    this.client.close();
  }

  private async call<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      throw this.explain(err);
    }
  }

  /** A coordinator failure as a status and sentence for the page. */
  private explain(err: unknown): DashboardError {
    if (!(err instanceof RpcError)) {
      return new DashboardError(500, `The dashboard failed: ${(err as Error).message ?? String(err)}`);
    }
    switch (err.codeName) {
      case 'NOT_FOUND':
        return new DashboardError(404, err.message);
      case 'UNAVAILABLE':
      case 'DEADLINE_EXCEEDED':
        return new DashboardError(
          503,
          `The coordinator at ${this.address} is not answering (${err.codeName}); the dashboard keeps trying. Start it, or restart the dashboard with the right --coordinator.`,
        );
      case 'UNAUTHENTICATED':
      case 'PERMISSION_DENIED':
        return new DashboardError(
          502,
          `The coordinator refused the operator certificate (${err.codeName}: ${err.message}); point --pki-dir at the operator's ca.crt and operator.crt/.key.`,
        );
      default:
        return new DashboardError(502, `The coordinator failed the call: ${err.codeName}: ${err.message}`);
    }
  }
}
