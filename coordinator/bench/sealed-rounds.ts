/**
 * A bench-only writer (not production code; nothing under src/ imports it): writes sealed rounds
 * straight into a coordinator's store, one transaction a round, for `pnpm bench:audit`.
 *
 * Every round state change goes through the engine's own checked transition
 * ({@link RoundEngine.transition}: scheduled -> open -> sealing -> sealed, each persisted with its
 * outbox event and ledger entry), and each update is recorded as the engine records it (participant
 * row, `round.update_accepted` event, `update.accepted` entry with both signatures), so the store and
 * the ledger are exactly what the engine would have written. What it skips is the engine's
 * round-trips (ticks, a transaction and a running-sum blob per update): the sum is folded here with
 * the federation's own aggregator, which is what makes a thousand rounds take a minute rather than
 * several.
 */
import {
  keyBundleStatement,
  type SignedUpdateFacts,
  sha256Hex,
  sign,
  signedUpdateMessage,
  signUpdate,
} from '@radfed/shared';
import type { Aggregator } from '../src/aggregation/aggregator.js';
import type { BlobStore } from '../src/blobs/types.js';
import { newId } from '../src/ids.js';
import type { Ledger } from '../src/ledger/ledger.js';
import { recordAcceptedUpdate } from '../src/ledger/round-records.js';
import type { RoundEngine } from '../src/rounds/engine.js';
import type { Db } from '../src/store/client.js';
import type { FederationRow } from '../src/store/queries/federations.js';
import * as federationQ from '../src/store/queries/federations.js';
import * as keyQ from '../src/store/queries/keys.js';
import { emit } from '../src/store/queries/outbox.js';
import * as roundQ from '../src/store/queries/rounds.js';

export interface BenchSite {
  id: string;
  /** PKCS#8 PEM Ed25519 key the site enrolled with. */
  signingKeyPem: string;
  datasetCommitment: string;
}

export interface SealedRoundsOptions {
  db: Db;
  blobs: BlobStore;
  ledger: Ledger;
  /** The engine whose transition every round state change goes through (never started here). */
  engine: RoundEngine;
  aggregator: Aggregator;
  federation: FederationRow;
  sites: BenchSite[];
  /** The update a site sends in a round (already encoded for the aggregator). */
  update: (round: number, site: number) => Uint8Array;
  samples: (site: number) => number;
  /**
   * Sums already folded, by the digests of their updates in order: a round whose sites re-send the
   * same updates reuses the sum rather than fold again (the benchmark re-sends HE updates).
   */
  sums?: Map<string, Uint8Array>;
}

/** Appends one sealed round after the federation's current model version; returns its number. */
export async function writeSealedRound(o: SealedRoundsOptions): Promise<number> {
  const fed = (await federationQ.getFederation(o.db, o.federation.id))!;
  const number = (await roundQ.lastRoundNumber(o.db, fed.id)) + 1;
  const roundId = newId('rd');
  const version = fed.currentModelVersion;
  const updates = o.sites.map((site, i) => {
    const bytes = o.update(number, i);
    return {
      site,
      bytes,
      digest: sha256Hex(bytes),
      samples: o.samples(i),
      key: `rounds/${roundId}/updates/${site.id}`,
    };
  });
  const sumOf = updates.map((u) => u.digest).join(',');
  let sum = o.sums?.get(sumOf);
  if (!sum) {
    for (const u of updates) sum = await o.aggregator.fold(sum, u.bytes);
    o.sums?.set(sumOf, sum!);
  }
  const sumKey = `rounds/${roundId}/sum-${updates.length}`;
  await Promise.all([...updates.map((u) => o.blobs.put(u.key, u.bytes)), o.blobs.put(sumKey, sum!)]);
  const now = new Date();
  const totalSamples = updates.reduce((a, u) => a + u.samples, 0);
  await o.db.transaction(async (tx) => {
    const [scheduled] = await roundQ.insertRounds(tx, [
      { id: roundId, federationId: fed.id, number, state: 'scheduled' },
    ]);
    await emit(tx, 'round.scheduled', { federationId: fed.id, roundId, number });
    await roundQ.insertParticipants(
      tx,
      roundId,
      o.sites.map((s) => s.id),
    );
    const opened = await o.engine.transition(tx, scheduled!, 'open', {
      modelVersion: version,
      openedAt: now,
      deadlineAt: new Date(now.getTime() + fed.roundDeadlineSeconds * 1000),
    });
    for (const u of updates) {
      const metrics = { loss: 1 / number };
      const facts: SignedUpdateFacts = {
        roundId,
        modelVersion: version,
        updateDigest: u.digest,
        datasetCommitment: u.site.datasetCommitment,
        metrics,
        sampleCount: u.samples,
      };
      const provenance = {
        datasetCommitment: u.site.datasetCommitment,
        signedPayload: signedUpdateMessage(facts).toString('utf8'),
        siteSignature: signUpdate(u.site.signingKeyPem, facts).toString('base64'),
      };
      await roundQ.answerParticipant(tx, roundId, u.site.id, 'submitted', {
        sampleCount: u.samples,
        metrics,
        updateDigest: u.digest,
        updateKey: u.key,
        ...provenance,
      });
      await emit(tx, 'round.update_accepted', {
        federationId: fed.id,
        roundId,
        siteId: u.site.id,
        sampleCount: u.samples,
        digest: u.digest,
      });
      await recordAcceptedUpdate(
        o.ledger,
        tx,
        opened,
        {
          siteId: u.site.id,
          modelVersion: version,
          digest: u.digest,
          updateBytes: u.bytes.byteLength,
          sampleCount: u.samples,
          metrics,
          provenance,
        },
        o.aggregator.encoding,
      );
    }
    const sealing = await o.engine.transition(tx, opened, 'sealing', {
      aggregateKey: sumKey,
      aggregateDigest: sha256Hex(sum!),
      totalSamples,
    });
    await federationQ.addModelVersion(tx, {
      federationId: fed.id,
      version: version + 1,
      blobKey: sumKey,
      digest: sha256Hex(sum!),
      totalSamples,
      roundId,
    });
    await o.engine.transition(tx, sealing, 'sealed', {
      resultModelVersion: version + 1,
      closedAt: new Date(),
    });
  });
  return number;
}

/**
 * Publishes an HE federation's key bundle as key custody does (public parameters blob, key bundle
 * row, `key_bundle.published` entry signed by the custodian), without the wrapped secret keys, which
 * no benchmark step needs.
 */
export async function writeKeyBundle(
  o: Pick<SealedRoundsOptions, 'db' | 'blobs' | 'ledger' | 'federation'>,
  custodian: BenchSite,
  bundle: { presetHash: string; keyId: string; publicParameters: Uint8Array },
): Promise<void> {
  const fed = o.federation;
  const key = `keys/${fed.id}/${bundle.keyId}.public`;
  await o.blobs.put(key, bundle.publicParameters);
  const claim = {
    federationId: fed.id,
    custodianSiteId: custodian.id,
    presetHash: bundle.presetHash,
    keyId: bundle.keyId,
  };
  const signature = sign(custodian.signingKeyPem, keyBundleStatement(claim)).toString('base64');
  await o.db.transaction(async (tx) => {
    await keyQ.setKeyCustodian(tx, fed.id, custodian.id);
    await keyQ.insertKeyBundle(tx, {
      federationId: fed.id,
      custodianSiteId: custodian.id,
      presetHash: bundle.presetHash,
      publicParametersKey: key,
      publicParametersDigest: bundle.keyId,
      custodianSignature: signature,
    });
    await o.ledger.append(tx, fed.id, 'key_bundle.published', {
      custodianSiteId: custodian.id,
      presetHash: bundle.presetHash,
      publicParametersDigest: bundle.keyId,
      custodianSignature: signature,
      wrappedForSiteIds: [],
    });
  });
}
