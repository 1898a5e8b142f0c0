import { CiphertextSum, type HePreset, isEncrypted } from '@radfed/shared';
import { federationHe } from '../federations/spec.js';
import type { Db } from '../store/client.js';
import type { FederationRow } from '../store/queries/federations.js';
import * as keyQ from '../store/queries/keys.js';
import * as siteQ from '../store/queries/sites.js';
import type { Aggregator } from './aggregator.js';
import { EncryptedAggregator, encryptedEncoding } from './encrypted.js';
import { PlaintextAggregator } from './plaintext.js';

/** The update encoding of a preset, known without any key (the ledger pins it at creation). */
export function updateEncoding(preset: HePreset): string {
  return isEncrypted(preset) ? encryptedEncoding(preset) : new PlaintextAggregator().encoding;
}

/** Picks each federation's aggregator from its HE preset (and, for HE presets, its published key). */
export interface AggregatorRegistry {
  forFederation(fed: FederationRow): Promise<Aggregator>;
}

/** Always the same aggregator, whatever the federation (e.g. plaintext-only tests). */
export function singleAggregator(aggregator: Aggregator): AggregatorRegistry {
  return { forFederation: async () => aggregator };
}

/**
 * The coordinator's registry: plaintext federations get the float64 aggregator, HE federations an
 * encrypted aggregator bound to their key id, all sharing one pool of HE worker threads.
 */
export class PresetAggregators implements AggregatorRegistry {
  private readonly plaintext = new PlaintextAggregator();
  /** Shared with key custody, which checks published public parameters on the same threads. */
  readonly sums: CiphertextSum;

  constructor(
    private readonly db: Db,
    options: { threads?: number } = {},
  ) {
    this.sums = new CiphertextSum(options.threads);
  }

  async forFederation(fed: FederationRow): Promise<Aggregator> {
    const { preset } = federationHe(fed);
    if (!isEncrypted(preset)) return this.plaintext;
    const bundle = await keyQ.getKeyBundle(this.db, fed.id);
    let custodian: string | undefined;
    if (!bundle && fed.keyCustodianSiteId) {
      custodian = (await siteQ.getSite(this.db, fed.keyCustodianSiteId))?.name;
    }
    return new EncryptedAggregator(
      preset,
      bundle?.publicParametersDigest,
      this.sums,
      custodian && `site ${custodian}`,
    );
  }

  close(): Promise<void> {
    return this.sums.close();
  }
}
