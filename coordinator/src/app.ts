import { join } from 'node:path';
import type { Logger } from '@radfed/shared';
import { builtinModelSpec, initDevPki } from '@radfed/shared';
import { PresetAggregators } from './aggregation/registry.js';
import { LocalBlobStore } from './blobs/local-blob-store.js';
import type { CoordinatorConfig } from './config/config.js';
import { KeyCustodyService } from './custody/service.js';
import { createEventBus } from './events/index.js';
import { OutboxRelay } from './events/outbox-relay.js';
import type { EventBus } from './events/types.js';
import { FederationService } from './federations/service.js';
import { Ledger } from './ledger/ledger.js';
import { UpdateRetention } from './ledger/retention.js';
import { loadCoordinatorSigningKey } from './ledger/signing-key.js';
import { RoundEngine } from './rounds/engine.js';
import { type DatabaseHandle, openDatabase } from './store/client.js';
import * as federationQ from './store/queries/federations.js';
import * as outboxQ from './store/queries/outbox.js';
import * as roundQ from './store/queries/rounds.js';
import { Authenticator } from './transport/auth.js';
import { trainTaskToProto } from './transport/convert.js';
import { keyRelay } from './transport/key-relay.js';
import { type RunningServer, startGrpcServer } from './transport/server.js';
import { TaskHub } from './transport/task-hub.js';

export interface Coordinator {
  /** The port the gRPC server listens on. */
  port: number;
  config: CoordinatorConfig;
  database: DatabaseHandle;
  bus: EventBus;
  engine: RoundEngine;
  federations: FederationService;
  /** Graceful stop: refuse new calls, end task streams, finish in-flight calls, flush events, close. */
  stop(): Promise<void>;
}

/** Starts a coordinator: database, blob store, event bus and outbox relay, round engine, gRPC server. */
export async function startCoordinator(config: CoordinatorConfig, log: Logger): Promise<Coordinator> {
  const pki = await initDevPki(config.pkiDir, { hosts: config.hosts });
  if (pki.created) log.info(`created a development PKI in ${config.pkiDir}`);
  const ledger = new Ledger({ signingKey: await loadCoordinatorSigningKey(config.pkiDir) });
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: join(config.dataDir, 'db'),
  });
  log.info(`database ready (${database.driver})`);
  const blobs = new LocalBlobStore({ root: config.blobDir });
  const bus = await createEventBus({
    natsUrl: config.natsUrl,
    stream: config.natsStream,
    // One stream per deployment; its subjects are named after it so deployments sharing a NATS server never overlap.
    subjectPrefix: config.natsStream.toLowerCase(),
    onError: (err) => log.warn('event handler failed', { err: err as Error }),
  });
  log.info(`event bus ready (${config.natsUrl ? 'NATS JetStream' : 'in-process'})`);
  const relay = new OutboxRelay({
    source: {
      fetchUnpublished: (limit) => outboxQ.fetchUnpublished(database.db, limit),
      markPublished: (ids) => outboxQ.markPublished(database.db, ids),
    },
    bus,
    onError: (err) => log.warn('outbox relay pass failed; will retry', { err: err as Error }),
  });
  const poke = () => relay.poke();
  // Plaintext or encrypted per federation; encrypted folds run on HE worker threads (config heThreads).
  const aggregators = new PresetAggregators(database.db, { threads: config.heThreads });
  const engine = new RoundEngine({
    db: database.db,
    blobs,
    aggregators,
    ledger,
    log,
    onCommit: poke,
    tickMs: config.tickMs,
  });
  const federations = new FederationService(database.db, pki.ca, ledger, poke);
  const custody = new KeyCustodyService(database.db, blobs, aggregators.sums, federations, poke);
  const retention = new UpdateRetention({
    db: database.db,
    blobs,
    ledger,
    log,
    keepRounds: config.ciphertextRetentionRounds,
  });
  const auth = new Authenticator(database.db, pki.ca.certPem);
  const hub = new TaskHub(log, config.heartbeatSeconds * 1000);

  // Tasks reach agents from the event stream, so any replica holding the agent's stream can push.
  const taskSub = await bus.subscribe(async (event) => {
    if (event.topic !== 'round.opened') return;
    const p = event.payload;
    const round = await roundQ.getRound(database.db, p.roundId);
    if (round?.state !== 'open') return;
    const fed = (await federationQ.getFederation(database.db, round.federationId))!;
    for (const siteId of p.invitedSiteIds)
      hub.send(siteId, { event: { $case: 'train', value: trainTaskToProto(round, fed) } });
  });
  // Key work (generate, wrap for late sites, fetch) reaches connected agents the same way.
  const keySub = await bus.subscribe(keyRelay({ db: database.db, custody, hub, log }));
  // Retention runs when a round closes, from the event stream (any replica may run it; it is idempotent).
  const retentionSub = retention.enabled
    ? await bus.subscribe(async (event) => {
        if (
          event.topic !== 'round.sealed' &&
          event.topic !== 'round.failed' &&
          event.topic !== 'round.cancelled'
        )
          return;
        await retention.prune(event.payload.federationId);
      })
    : undefined;
  relay.start();

  let server: RunningServer;
  try {
    server = await startGrpcServer({
      host: config.host,
      port: config.port,
      tls: { caCertPem: pki.ca.certPem, certPem: pki.coordinator.certPem, keyPem: pki.coordinator.keyPem },
      maxMessageBytes: config.maxMessageBytes,
      limits: {
        handshakeTimeoutMs: config.handshakeTimeoutSeconds * 1000,
        keepaliveMs: config.keepaliveSeconds * 1000,
        keepaliveTimeoutMs: config.keepaliveTimeoutSeconds * 1000,
        idleConnectionMs: config.idleConnectionSeconds * 1000,
        maxConnections: config.maxConnections,
        maxConcurrentStreams: config.maxConcurrentStreams,
      },
      log,
      site: {
        db: database.db,
        blobs,
        aggregators,
        custody,
        engine,
        federations,
        auth,
        hub,
        caCertPem: pki.ca.certPem,
        log,
        uploadInactivityMs: config.uploadInactivitySeconds * 1000,
      },
      operator: {
        db: database.db,
        engine,
        federations,
        custody,
        auth,
        hub,
        bus,
        log,
        defaultModelSpec: () => builtinModelSpec(),
      },
      audit: { db: database.db, blobs, ledger, federations, auth, caCertPem: pki.ca.certPem, log },
    });
  } catch (err) {
    await relay.stop();
    await aggregators.close();
    await bus.close();
    await database.close();
    throw err;
  }
  engine.start();

  let stopping: Promise<void> | undefined;
  return {
    port: server.port,
    config,
    database,
    bus,
    engine,
    federations,
    stop: () => {
      stopping ??= (async () => {
        log.info('shutting down: draining in-flight calls');
        await engine.stop();
        hub.closeAll();
        await server.shutdown(config.shutdownGraceSeconds * 1000);
        await relay
          .drain()
          .catch((err: unknown) => log.warn('could not flush all events', { err: err as Error }));
        await relay.stop();
        await taskSub.unsubscribe();
        await keySub.unsubscribe();
        await retentionSub?.unsubscribe();
        await bus.close();
        await aggregators.close();
        await blobs.close();
        await database.close();
        log.info('coordinator stopped');
      })();
      return stopping;
    },
  };
}
