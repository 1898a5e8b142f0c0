/**
 * The site's copy of its federation's HE key, and the key custody work the coordinator asks of it.
 *
 * The custodian site generates the key here, keeps it in the state directory (mode 0600), wraps the
 * secret key for every enrolled site's X25519 key and signs what it publishes; other sites fetch
 * their wrapped copy and unwrap it here. Security: the secret key is written only to this site's
 * state directory and leaves it only wrapped for another site's key-wrap key; the coordinator relays
 * public parameters and wrapped keys and cannot read either secret.
 */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { RpcError } from '@radfed/proto';
import {
  decodePublicParameters,
  HE_PRESET_NAMES,
  type HePreset,
  heKeyId,
  heKeyWrapContext,
  hePreset,
  isHePresetName,
  keyBundleStatement,
  keyWrapStatement,
  type Logger,
  presetHash,
  sign,
  unwrapKey,
  verify,
  wrapKey,
} from '@radfed/shared';
import type { HeKeyMaterial, SiteHe } from '@radfed/shared/he-site';
import { HeKeyBundleError, TaskDeclinedError } from '../errors.js';
import { atomicWrite } from '../state/agent-state.js';
import type { HeKeyBundle, KeyEvent, KeyWorkRequest } from '../transport/convert.js';
import type { SiteClient } from '../transport/site-client.js';

/** The file holding the site's HE key (secret key included): mode 0600, in the state directory. */
export const HE_KEY_FILE = 'he-key.json';

interface StoredKey {
  federationId: string;
  preset: string;
  custodianSiteId: string;
  keyId: string;
  publicParameters: string;
  secretKey: string;
}

export interface HeKeyringOptions {
  client: SiteClient;
  he: SiteHe;
  stateDir: string;
  siteId: string;
  /** Ed25519 PKCS#8 PEM (signing.key): signs bundles and wraps. */
  signingKeyPem: string;
  /** X25519 PKCS#8 PEM (key-wrap.key): unwraps this site's copy of the HE secret key. */
  keyWrapKeyPem: string;
  log: Logger;
}

/** The site's HE key: loading, fetching and unwrapping it, and generating or wrapping it on request. */
export class HeKeyring {
  private cached: (StoredKey & { material: HeKeyMaterial }) | undefined;
  /** Key work runs one piece at a time, so two generate requests can never make two keys. */
  private work: Promise<void> = Promise.resolve();

  constructor(private readonly o: HeKeyringOptions) {}

  /**
   * The federation's HE key for `preset`: the stored copy, else this site's wrapped copy fetched
   * from the coordinator, checked and unwrapped.
   * @throws TaskDeclinedError saying plainly why the site cannot take part when it has no key yet.
   */
  async keyFor(federationId: string, preset: HePreset): Promise<HeKeyMaterial> {
    const held = await this.stored();
    if (held && held.federationId === federationId && held.preset === preset.name) return held.material;
    try {
      return await this.fetch(federationId, preset);
    } catch (err) {
      const rpc = err instanceof RpcError ? err : undefined;
      if (rpc?.code === status.FAILED_PRECONDITION || rpc?.code === status.NOT_FOUND) {
        throw new TaskDeclinedError(`this site does not hold the federation's HE key yet: ${rpc.message}`, {
          cause: err,
        });
      }
      if (rpc) throw err;
      throw new TaskDeclinedError(
        `this site's copy of the federation's HE key is unusable: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  /** Handles key work pushed by the coordinator; failures are logged, never thrown (it asks again). */
  onKeyEvent(event: KeyEvent): Promise<void> {
    const run = this.work.then(() => this.handle(event));
    this.work = run;
    return run;
  }

  private async handle(event: KeyEvent): Promise<void> {
    try {
      if (event.kind === 'request') await this.onRequest(event.request);
      else {
        const held = await this.stored();
        if (held?.keyId === event.available.keyId) return;
        const preset = held?.preset ?? (await this.bundlePreset(event.available.federationId));
        if (preset) await this.fetch(event.available.federationId, hePreset(preset));
      }
    } catch (err) {
      this.o.log.warn(`HE key work failed: ${(err as Error).message}`);
    }
  }

  private async onRequest(req: KeyWorkRequest): Promise<void> {
    const name = req.hePreset.name;
    if (!isHePresetName(name) || req.hePreset.presetHash !== presetHash(hePreset(name))) {
      this.o.log.warn(
        `asked for keys of HE preset "${name}", which this agent version does not know; upgrade it`,
      );
      return;
    }
    const preset = hePreset(name);
    let held = await this.stored();
    if (held && (held.federationId !== req.federationId || held.preset !== name)) held = undefined;
    let custodianSignature: Buffer = Buffer.alloc(0);
    if (req.generate) {
      if (!held) {
        const material = await this.o.he.generateKeys(preset);
        // Stored before anything is published, so a crash never loses a key others may hold.
        held = await this.store({
          federationId: req.federationId,
          preset: name,
          custodianSiteId: this.o.siteId,
          material,
        });
        this.o.log.info(`generated the federation's HE key ${material.keyId.slice(0, 12)}… (${name})`);
      }
      const claim = {
        federationId: req.federationId,
        custodianSiteId: this.o.siteId,
        presetHash: presetHash(preset),
        keyId: held.keyId,
      };
      custodianSignature = sign(this.o.signingKeyPem, keyBundleStatement(claim));
    } else if (!held) {
      this.o.log.warn('asked to wrap the HE key for other sites, but this site holds no copy of it');
      return;
    }
    const bundle: HeKeyBundle = {
      federationId: req.federationId,
      custodianSiteId: req.generate ? this.o.siteId : held.custodianSiteId,
      presetHash: presetHash(preset),
      publicParameters: Buffer.from(held.material.publicParameters),
      wrappedKeys: [],
      custodianSignature,
      keyId: held.keyId,
    };
    for (const r of req.recipients) {
      try {
        const wrapped = wrapKey(
          r.keyWrapPublicKey,
          held.material.secretKey,
          heKeyWrapContext(req.federationId, held.keyId),
        );
        const claim = {
          federationId: req.federationId,
          keyId: held.keyId,
          siteId: r.siteId,
          wrappedBySiteId: this.o.siteId,
          ...wrapped,
        };
        bundle.wrappedKeys.push({
          siteId: r.siteId,
          ...wrapped,
          wrappedBySiteId: this.o.siteId,
          signature: sign(this.o.signingKeyPem, keyWrapStatement(claim)),
        });
      } catch (err) {
        this.o.log.warn(`could not wrap the HE key for site ${r.siteId}: ${(err as Error).message}`);
      }
    }
    let res: Awaited<ReturnType<SiteClient['publishKeyBundle']>>;
    try {
      res = await this.o.client.publishKeyBundle(bundle);
    } catch (err) {
      if (req.generate && err instanceof RpcError && err.code === status.FAILED_PRECONDITION) {
        // Another key was published first: drop ours and take this site's copy of that one, if any.
        this.o.log.warn(`the coordinator kept another HE key (${err.message}); fetching it instead`);
        this.cached = undefined;
        await rm(join(this.o.stateDir, HE_KEY_FILE), { force: true });
        await this.fetch(req.federationId, preset);
        return;
      }
      throw err;
    }
    this.o.log.info(
      `${req.generate ? 'published the HE key bundle' : 'wrapped the HE key'} for ${res.wrappedKeysStored} site(s)`,
    );
  }

  /** Fetches this site's wrapped key, checks both signatures, unwraps and stores it. */
  private async fetch(federationId: string, preset: HePreset): Promise<HeKeyMaterial> {
    const res = await this.o.client.getKeyBundle(federationId);
    const b = res.bundle;
    const mine = b?.wrappedKeys.find((w) => w.siteId === this.o.siteId);
    if (!b || !mine) throw new HeKeyBundleError('the coordinator returned no key wrapped for this site');
    const publicParameters = Uint8Array.from(b.publicParameters);
    const keyId = heKeyId(publicParameters);
    const hash = b.presetHash;
    if (hash !== presetHash(preset) || decodePublicParameters(publicParameters).presetHash !== hash) {
      throw new HeKeyBundleError(`the key bundle is for another HE preset than ${preset.name}`);
    }
    const custodianKey = res.signingPublicKeys[b.custodianSiteId];
    const bundleClaim = { federationId, custodianSiteId: b.custodianSiteId, presetHash: hash, keyId };
    if (!custodianKey || !verify(custodianKey, keyBundleStatement(bundleClaim), b.custodianSignature)) {
      throw new HeKeyBundleError("the key bundle's custodian signature does not verify");
    }
    const wrapperKey = res.signingPublicKeys[mine.wrappedBySiteId];
    const wrapClaim = {
      federationId,
      keyId,
      siteId: this.o.siteId,
      wrappedBySiteId: mine.wrappedBySiteId,
      ephemeralPublicKey: mine.ephemeralPublicKey,
      nonce: mine.nonce,
      ciphertext: mine.ciphertext,
    };
    if (!wrapperKey || !verify(wrapperKey, keyWrapStatement(wrapClaim), mine.signature)) {
      throw new HeKeyBundleError("the signature on this site's wrapped key does not verify");
    }
    const secretKey = unwrapKey(this.o.keyWrapKeyPem, mine, heKeyWrapContext(federationId, keyId));
    const held = await this.store({
      federationId,
      preset: preset.name,
      custodianSiteId: b.custodianSiteId,
      material: { keyId, publicParameters, secretKey: Uint8Array.from(secretKey) },
    });
    this.o.log.info(
      `received the federation's HE key ${keyId.slice(0, 12)}… (wrapped by ${mine.wrappedBySiteId})`,
    );
    return held.material;
  }

  private async bundlePreset(federationId: string): Promise<string | undefined> {
    const res = await this.o.client.getKeyBundle(federationId);
    const hash = res.bundle?.presetHash ?? '';
    return HE_PRESET_NAMES.find((n) => presetHash(hePreset(n)) === hash);
  }

  private async store(k: {
    federationId: string;
    preset: string;
    custodianSiteId: string;
    material: HeKeyMaterial;
  }): Promise<StoredKey & { material: HeKeyMaterial }> {
    const record: StoredKey = {
      federationId: k.federationId,
      preset: k.preset,
      custodianSiteId: k.custodianSiteId,
      keyId: k.material.keyId,
      publicParameters: Buffer.from(k.material.publicParameters).toString('base64'),
      secretKey: Buffer.from(k.material.secretKey).toString('base64'),
    };
    await atomicWrite(join(this.o.stateDir, HE_KEY_FILE), `${JSON.stringify(record)}\n`, 0o600);
    this.cached = { ...record, material: k.material };
    return this.cached;
  }

  private async stored(): Promise<(StoredKey & { material: HeKeyMaterial }) | undefined> {
    if (this.cached) return this.cached;
    const path = join(this.o.stateDir, HE_KEY_FILE);
    if (!existsSync(path)) return undefined;
    const record = JSON.parse(await readFile(path, 'utf8')) as StoredKey;
    const material: HeKeyMaterial = {
      keyId: record.keyId,
      publicParameters: Buffer.from(record.publicParameters, 'base64'),
      secretKey: Buffer.from(record.secretKey, 'base64'),
    };
    if (heKeyId(material.publicParameters) !== record.keyId) return undefined;
    this.cached = { ...record, material };
    return this.cached;
  }
}
