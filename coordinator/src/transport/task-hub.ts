import type { ServerWritableStream } from '@grpc/grpc-js';
import type { WatchTasksRequest, WatchTasksResponse } from '@radfed/proto';
import type { Logger } from '@radfed/shared';

type TaskStream = ServerWritableStream<WatchTasksRequest, WatchTasksResponse>;

/**
 * The agents' open `WatchTasks` streams, by site. Agents dial out and keep this stream open; the
 * coordinator pushes tasks down it (hospitals accept no inbound connections). Heartbeats keep idle
 * streams alive through proxies and let the agent notice a dead coordinator.
 */
export class TaskHub {
  private readonly streams = new Map<string, Set<TaskStream>>();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    heartbeatMs = 10_000,
  ) {
    this.heartbeat = setInterval(
      () => this.broadcast({ event: { $case: 'heartbeat', value: { serverTime: new Date() } } }),
      heartbeatMs,
    );
    this.heartbeat.unref();
  }

  add(siteId: string, stream: TaskStream): () => void {
    const set = this.streams.get(siteId) ?? new Set<TaskStream>();
    this.streams.set(siteId, set);
    set.add(stream);
    return () => {
      set.delete(stream);
      if (set.size === 0) this.streams.delete(siteId);
    };
  }

  isConnected(siteId: string): boolean {
    return (this.streams.get(siteId)?.size ?? 0) > 0;
  }

  send(siteId: string, message: WatchTasksResponse): boolean {
    const set = this.streams.get(siteId);
    if (!set) return false;
    for (const stream of set) {
      try {
        stream.write(message);
      } catch (err) {
        this.log.warn('could not write to task stream', { site_id: siteId, err: err as Error });
      }
    }
    return true;
  }

  private broadcast(message: WatchTasksResponse): void {
    for (const siteId of this.streams.keys()) this.send(siteId, message);
  }

  /** Ends every stream (shutdown): agents see the stream close and reconnect with backoff. */
  closeAll(): void {
    clearInterval(this.heartbeat);
    for (const set of this.streams.values()) for (const stream of set) stream.end();
    this.streams.clear();
  }
}
