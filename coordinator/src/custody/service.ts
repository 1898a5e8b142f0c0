/**
 * HE key custody, the coordinator's part: it stores and relays public parameters and wrapped keys,
 * and asks key-holding sites for key work. Security: the secret key is generated at the custodian
 * site and only ever reaches the coordinator wrapped (X25519 + HKDF + AES-256-GCM) for a site's own
 * key; nothing stored or relayed here decrypts a ciphertext. Signatures are checked against the
 * signing keys sites enrolled with, so a relayed bundle or wrap cannot be swapped unnoticed.
 */
import {
  type CiphertextSum,
  HeKeyError,
  type HePreset,
  isEncrypted,
  keyBundleStatement,
  keyWrapStatement,
  presetHash,
  verify,
} from '@radfed/shared';
import type { BlobStore } from '../blobs/types.js';
import {
  HeKeysMissingError,
  InvalidKeyBundleError,
  InvalidRequestError,
  KeyBundleConflictError,
  NoKeyBundleForPlaintextError,
  NotKeyCustodianError,
  NoWrappedKeyError,
  SiteNotFoundError,
} from '../errors.js';
import type { FederationService } from '../federations/service.js';
import { federationHe } from '../federations/spec.js';
import type { Db, Executor } from '../store/client.js';
import type { FederationRow } from '../store/queries/federations.js';
import * as federationQ from '../store/queries/federations.js';
import type { KeyBundleRow, WrappedKeyRow } from '../store/queries/keys.js';
import * as keyQ from '../store/queries/keys.js';
import { emit } from '../store/queries/outbox.js';
import type { SiteRow } from '../store/queries/sites.js';
import * as siteQ from '../store/queries/sites.js';

/** One wrapped copy of the secret key, as a key holder submits it. */
export interface SubmittedWrap {
  siteId: string;
  ephemeralPublicKey: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
  wrappedBySiteId: string;
  signature: Uint8Array;
}

/** A key bundle as a key holder submits it (first publication, or more wraps for late sites). */
export interface SubmittedBundle {
  custodianSiteId: string;
  presetHash: string;
  publicParameters: Uint8Array;
  custodianSignature: Uint8Array;
  wrappedKeys: SubmittedWrap[];
}

/** What a site may read: the public bundle, its own wrapped key, and the signers' public keys. */
export interface KeyBundleView {
  bundle: KeyBundleRow;
  publicParameters: Uint8Array;
  wrapped: WrappedKeyRow;
  /** Raw Ed25519 public keys by site id: the custodian's and the wrapper's. */
  signingKeys: Record<string, Buffer>;
}

/** An enrolled site to wrap the secret key for. */
export interface KeyRecipient {
  siteId: string;
  keyWrapPublicKey: Buffer;
}

/** Key work for one site: generate the keys, wrap them for late sites, or fetch its wrapped copy. */
export type KeyWork =
  | { kind: 'generate'; federationId: string; preset: HePreset; recipients: KeyRecipient[] }
  | { kind: 'wrap'; federationId: string; preset: HePreset; recipients: KeyRecipient[] }
  | { kind: 'available'; federationId: string; keyId: string };

const NONCE_BYTES = 12;
const RAW_KEY_BYTES = 32;

/** Key custody: who holds keys, what to ask whom, and storing what key holders publish. */
export class KeyCustodyService {
  constructor(
    private readonly db: Db,
    private readonly blobs: BlobStore,
    private readonly sums: CiphertextSum,
    private readonly federations: FederationService,
    private readonly onCommit: () => void = () => {},
  ) {}

  /**
   * The federation's key custodian: the site the operator designated, else the first site enrolled
   * (recorded then, so it stays the same). Undefined while no site is enrolled.
   */
  async custodianOf(fed: FederationRow, ex: Executor = this.db): Promise<SiteRow | undefined> {
    const recorded = fed.keyCustodianSiteId ? await siteQ.getSite(ex, fed.keyCustodianSiteId) : undefined;
    if (recorded?.state === 'enrolled') return recorded;
    // None yet, or revoked: the first enrolled site that can do the work (before the keys exist, any;
    // after, one holding a copy). Compare-and-set, so concurrent callers agree.
    const bundle = await keyQ.getKeyBundle(ex, fed.id);
    let next: SiteRow | undefined;
    for (const site of await siteQ.listEnrolledSites(ex, fed.id)) {
      if (!bundle || bundle.custodianSiteId === site.id || (await keyQ.getWrappedKey(ex, fed.id, site.id))) {
        if (!next || site.enrolledAt < next.enrolledAt) next = site;
      }
    }
    if (!next) return undefined;
    if (recorded) await keyQ.setKeyCustodian(ex, fed.id, next.id);
    else await keyQ.setKeyCustodian(ex, fed.id, next.id, true);
    const again = await federationQ.getFederation(ex, fed.id);
    return again?.keyCustodianSiteId ? siteQ.getSite(ex, again.keyCustodianSiteId) : next;
  }

  /** Whether the federation's key bundle is published. */
  async published(fed: FederationRow): Promise<boolean> {
    return (await keyQ.getKeyBundle(this.db, fed.id)) !== undefined;
  }

  /** What `site` should do about keys now (sent on its task stream when it connects and on changes). */
  async workFor(site: SiteRow): Promise<KeyWork[]> {
    const fed = await federationQ.getFederation(this.db, site.federationId);
    if (!fed || site.state !== 'enrolled') return [];
    const { preset } = federationHe(fed);
    if (!isEncrypted(preset)) return [];
    const custodian = await this.custodianOf(fed);
    const bundle = await keyQ.getKeyBundle(this.db, fed.id);
    if (!bundle) {
      if (custodian?.id !== site.id) return [];
      const all = await siteQ.listEnrolledSites(this.db, fed.id);
      return [{ kind: 'generate', federationId: fed.id, preset, recipients: all.map(recipient) }];
    }
    const work: KeyWork[] = [];
    const own = await keyQ.getWrappedKey(this.db, fed.id, site.id);
    if (custodian?.id === site.id && (own || bundle.custodianSiteId === site.id)) {
      const missing = await keyQ.sitesWithoutWrappedKey(this.db, fed.id);
      if (missing.length > 0) {
        work.push({ kind: 'wrap', federationId: fed.id, preset, recipients: missing.map(recipient) });
      }
    }
    if (own) work.push({ kind: 'available', federationId: fed.id, keyId: bundle.publicParametersDigest });
    return work;
  }

  /**
   * Stores a key bundle published by `site`: the first publication (custodian only) or wraps for
   * sites that enrolled later (the designated key holder only). Everything is checked before anything
   * is stored: preset, public parameters, signatures, recipients.
   */
  async publish(site: SiteRow, input: SubmittedBundle): Promise<{ keyId: string; stored: string[] }> {
    const fed = (await federationQ.getFederation(this.db, site.federationId))!;
    const { preset } = federationHe(fed);
    if (!isEncrypted(preset)) throw new NoKeyBundleForPlaintextError();
    if (input.presetHash !== presetHash(preset)) {
      throw new InvalidKeyBundleError(
        `The key bundle is for another HE preset; this federation uses ${preset.name}. Upgrade the agent.`,
      );
    }
    let keyId: string;
    try {
      keyId = await this.sums.checkPublicParameters(preset, input.publicParameters);
    } catch (err) {
      if (err instanceof HeKeyError) throw new InvalidKeyBundleError(err.message, { cause: err });
      throw err;
    }
    const custodian = await this.custodianOf(fed);
    const existing = await keyQ.getKeyBundle(this.db, fed.id);
    const signingKey = Buffer.from(site.signingPublicKey, 'base64');
    if (custodian?.id !== site.id) {
      throw new NotKeyCustodianError(
        `Only the federation's key custodian (${custodian?.name ?? 'none yet'}) may publish or extend its HE key bundle.`,
      );
    }
    if (existing) {
      if (existing.publicParametersDigest !== keyId) {
        throw new KeyBundleConflictError(
          `This federation already has HE key ${existing.publicParametersDigest.slice(0, 12)}…; keys are not replaced. Wrap that key for new sites instead.`,
        );
      }
      const holds =
        existing.custodianSiteId === site.id ||
        (await keyQ.getWrappedKey(this.db, fed.id, site.id)) !== undefined;
      if (!holds) {
        throw new NotKeyCustodianError(
          'This site holds no copy of the federation HE key, so it cannot wrap it for others.',
        );
      }
    } else {
      const claim = { federationId: fed.id, custodianSiteId: site.id, presetHash: input.presetHash, keyId };
      if (
        input.custodianSiteId !== site.id ||
        !verify(signingKey, keyBundleStatement(claim), input.custodianSignature)
      ) {
        throw new InvalidKeyBundleError(
          "The key bundle's custodian signature does not verify with this site's enrolled signing key.",
        );
      }
    }
    const enrolled = new Set((await siteQ.listEnrolledSites(this.db, fed.id)).map((s) => s.id));
    for (const w of input.wrappedKeys) this.checkWrap(fed, keyId, site, signingKey, enrolled, w);
    const publicKey = `keys/${fed.id}/${keyId}.public`;
    if (!existing) await this.blobs.put(publicKey, input.publicParameters);
    const stored = await this.db.transaction(async (tx) => {
      if (!existing) {
        const inserted = await keyQ.insertKeyBundle(tx, {
          federationId: fed.id,
          custodianSiteId: site.id,
          presetHash: input.presetHash,
          publicParametersKey: publicKey,
          publicParametersDigest: keyId,
          custodianSignature: Buffer.from(input.custodianSignature).toString('base64'),
        });
        if (!inserted) {
          throw new KeyBundleConflictError(
            'Another key bundle was published for this federation meanwhile; fetch it.',
          );
        }
      }
      const ids = await keyQ.insertWrappedKeys(
        tx,
        input.wrappedKeys.map((w) => ({
          federationId: fed.id,
          siteId: w.siteId,
          ephemeralPublicKey: Buffer.from(w.ephemeralPublicKey).toString('base64'),
          nonce: Buffer.from(w.nonce).toString('base64'),
          ciphertext: Buffer.from(w.ciphertext).toString('base64'),
          wrappedBySiteId: site.id,
          signature: Buffer.from(w.signature).toString('base64'),
        })),
      );
      if (!existing) {
        await emit(tx, 'he.key_bundle_published', {
          federationId: fed.id,
          keyId,
          custodianSiteId: site.id,
          wrappedSiteIds: ids,
        });
        // The ledger pins the key every later ciphertext is under, with the custodian's signature.
        await this.federations.ledger.append(tx, fed.id, 'key_bundle.published', {
          custodianSiteId: site.id,
          presetHash: input.presetHash,
          publicParametersDigest: keyId,
          custodianSignature: Buffer.from(input.custodianSignature).toString('base64'),
          wrappedForSiteIds: [...ids].sort(),
        });
      } else if (ids.length > 0) {
        await emit(tx, 'he.keys_wrapped', {
          federationId: fed.id,
          keyId,
          wrappedBySiteId: site.id,
          siteIds: ids,
        });
      }
      return ids;
    });
    this.onCommit();
    return { keyId, stored };
  }

  /**
   * The key bundle as `site` may see it: public parameters, only its own wrapped key, and the
   * signing keys to check both signatures with.
   */
  async bundleFor(site: SiteRow): Promise<KeyBundleView> {
    const fed = (await federationQ.getFederation(this.db, site.federationId))!;
    if (!isEncrypted(federationHe(fed).preset)) throw new NoKeyBundleForPlaintextError();
    const custodian = await this.custodianOf(fed);
    const name = custodian ? `site ${custodian.name}` : 'the first site to enrol';
    const bundle = await keyQ.getKeyBundle(this.db, fed.id);
    if (!bundle) throw new HeKeysMissingError(name);
    const wrapped = await keyQ.getWrappedKey(this.db, fed.id, site.id);
    if (!wrapped) throw new NoWrappedKeyError(name);
    const signingKeys: Record<string, Buffer> = {};
    for (const id of new Set([bundle.custodianSiteId, wrapped.wrappedBySiteId])) {
      const s = await siteQ.getSite(this.db, id);
      if (s) signingKeys[id] = Buffer.from(s.signingPublicKey, 'base64');
    }
    return {
      bundle,
      publicParameters: await this.blobs.get(bundle.publicParametersKey),
      wrapped,
      signingKeys,
    };
  }

  /**
   * Designates the key custodian: before the keys exist, the site that will generate them; after,
   * the key-holding site that wraps them for sites enrolling later (it must hold a copy).
   */
  async designate(federationRef: string, siteRef: string): Promise<FederationRow> {
    const fed = await this.federations.resolve(federationRef);
    if (!isEncrypted(federationHe(fed).preset)) throw new NoKeyBundleForPlaintextError();
    const site =
      (await siteQ.getSite(this.db, siteRef)) ?? (await siteQ.getSiteByName(this.db, fed.id, siteRef));
    if (!site || site.federationId !== fed.id) throw new SiteNotFoundError(siteRef);
    if (site.state !== 'enrolled') {
      throw new InvalidRequestError(`Site ${site.name} is ${site.state}; designate an enrolled site.`);
    }
    const bundle = await keyQ.getKeyBundle(this.db, fed.id);
    if (
      bundle &&
      bundle.custodianSiteId !== site.id &&
      !(await keyQ.getWrappedKey(this.db, fed.id, site.id))
    ) {
      throw new KeyBundleConflictError(
        `Site ${site.name} holds no copy of the federation's HE key yet, so it cannot wrap it for others; designate a site that does.`,
      );
    }
    await this.db.transaction(async (tx) => {
      await keyQ.setKeyCustodian(tx, fed.id, site.id);
      await emit(tx, 'he.custodian_designated', { federationId: fed.id, siteId: site.id });
    });
    this.onCommit();
    return (await federationQ.getFederation(this.db, fed.id))!;
  }

  private checkWrap(
    fed: FederationRow,
    keyId: string,
    site: SiteRow,
    signingKey: Buffer,
    enrolled: Set<string>,
    w: SubmittedWrap,
  ): void {
    if (!enrolled.has(w.siteId)) {
      throw new InvalidKeyBundleError(
        `A key is wrapped for ${w.siteId}, which is not enrolled in this federation.`,
      );
    }
    if (
      w.wrappedBySiteId !== site.id ||
      w.ephemeralPublicKey.byteLength !== RAW_KEY_BYTES ||
      w.nonce.byteLength !== NONCE_BYTES ||
      w.ciphertext.byteLength < 16
    ) {
      throw new InvalidKeyBundleError(`The key wrapped for ${w.siteId} is malformed.`);
    }
    const claim = {
      federationId: fed.id,
      keyId,
      siteId: w.siteId,
      wrappedBySiteId: site.id,
      ephemeralPublicKey: w.ephemeralPublicKey,
      nonce: w.nonce,
      ciphertext: w.ciphertext,
    };
    if (!verify(signingKey, keyWrapStatement(claim), w.signature)) {
      throw new InvalidKeyBundleError(
        `The signature on the key wrapped for ${w.siteId} does not verify with this site's enrolled signing key.`,
      );
    }
  }
}

function recipient(s: SiteRow): KeyRecipient {
  return { siteId: s.id, keyWrapPublicKey: Buffer.from(s.keyWrapPublicKey, 'base64') };
}
