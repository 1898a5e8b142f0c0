import { createHash, randomBytes } from 'node:crypto';
import { canonicalJson, fingerprint, InvalidCsrError, sha256Hex, signCsr } from '@radfed/shared';
import {
  FederationExistsError,
  FederationFullError,
  FederationNotFoundError,
  IllegalTransitionError,
  InvalidCsrRequestError,
  InvalidRequestError,
  InvalidTokenError,
  SiteNameTakenError,
  SiteNotFoundError,
  TokenExpiredError,
  TokenUsedError,
} from '../errors.js';
import { newId } from '../ids.js';
import { hePresetHash, ledgerUpdateEncoding } from '../ledger/he-preset.js';
import type { Ledger } from '../ledger/ledger.js';
import { assertNever, canSiteTransition, type SiteState } from '../rounds/states.js';
import type { Db, Executor } from '../store/client.js';
import type { FederationRow } from '../store/queries/federations.js';
import * as federationQ from '../store/queries/federations.js';
import { emit } from '../store/queries/outbox.js';
import type { SiteRow } from '../store/queries/sites.js';
import * as siteQ from '../store/queries/sites.js';
import { onUniqueViolation, UNIQUE } from '../store/unique-violation.js';
import { type FederationSpec, federationHe, parseFederationSpec } from './spec.js';

export interface CertificateAuthority {
  certPem: string;
  keyPem: string;
}

export interface EnrolInput {
  token: string;
  csrPem: string;
  signingPublicKey: Uint8Array;
  keyWrapPublicKey: Uint8Array;
  /** The agent's version, as it reports it; recorded in the ledger. */
  agentVersion?: string;
}

export interface EnrolResult {
  site: SiteRow;
  federation: FederationRow;
  certificatePem: string;
}

/** Default lifetime of an enrolment token. */
export const DEFAULT_TOKEN_TTL_SECONDS = 24 * 3600;

/**
 * Federations and their membership: creation from a validated spec, invitations (single-use,
 * expiring tokens of which only a hash is stored) and enrolment (a certificate issued from a CSR made
 * at the site, so the site's private key never reaches the coordinator). Creation, enrolment and
 * revocation are recorded in the federation's signed ledger in the transaction that makes them.
 */
export class FederationService {
  constructor(
    private readonly db: Db,
    private readonly ca: CertificateAuthority,
    /** The federation's signed ledger (key custody records key bundles in it too). */
    readonly ledger: Ledger,
    private readonly onCommit: () => void = () => {},
    private readonly now: () => Date = () => new Date(),
  ) {}

  async create(input: unknown): Promise<FederationRow> {
    const spec = parseFederationSpec(input);
    const { parameterCount, ...stored } = spec;
    const updateEncoding = ledgerUpdateEncoding(spec.hePreset);
    const creating = this.db.transaction(async (tx) => {
      if (await federationQ.getFederationByName(tx, spec.name)) throw new FederationExistsError(spec.name);
      const created = await federationQ.insertFederation(tx, {
        id: newId('fd'),
        name: spec.name,
        spec: stored,
        specHash: sha256Hex(canonicalJson(stored)),
        parameterCount,
        minSites: spec.minSites,
        roundDeadlineSeconds: spec.roundDeadlineSeconds,
        maxSamplesPerSite: spec.maxSamplesPerSite,
      });
      await emit(tx, 'federation.created', { federationId: created.id, name: created.name });
      await this.ledger.append(tx, created.id, 'federation.created', {
        federationId: created.id,
        name: created.name,
        spec: stored,
        specHash: created.specHash,
        hePreset: spec.hePreset,
        hePresetHash: hePresetHash(spec.hePreset),
        parameterCount,
        updateEncoding,
        coordinatorSigningKey: this.ledger.publicKey.toString('base64'),
        caCertificateFingerprint: fingerprint(this.ca.certPem),
      });
      return created;
    });
    // A concurrent call with the same name may pass the check first: the unique index decides.
    const row = await creating.catch(
      onUniqueViolation(UNIQUE.federationName, (cause) => new FederationExistsError(spec.name, { cause })),
    );
    this.onCommit();
    return row;
  }

  /** Finds a federation by id or by name. */
  async resolve(ref: string, ex: Executor = this.db): Promise<FederationRow> {
    const row =
      (await federationQ.getFederation(ex, ref)) ?? (await federationQ.getFederationByName(ex, ref));
    if (!row) throw new FederationNotFoundError(ref);
    return row;
  }

  list(): Promise<FederationRow[]> {
    return federationQ.listFederations(this.db);
  }

  /** Creates a single-use enrolment token for a new site; returns the token, shown once. */
  async invite(federationRef: string, siteName: string, ttlSeconds = DEFAULT_TOKEN_TTL_SECONDS) {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/.test(siteName)) {
      throw new InvalidRequestError(
        'Site names are 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit.',
      );
    }
    if (ttlSeconds < 60 || ttlSeconds > 30 * 24 * 3600) {
      throw new InvalidRequestError('Token lifetimes run from 60 seconds to 30 days.');
    }
    const fed = await this.resolve(federationRef);
    const token = `rfd_${randomBytes(24).toString('base64url')}`;
    const expiresAt = new Date(this.now().getTime() + ttlSeconds * 1000);
    await this.db.transaction(async (tx) => {
      if (await siteQ.getSiteByName(tx, fed.id, siteName)) {
        throw new InvalidRequestError(
          `A site named "${siteName}" is already enrolled in ${fed.name}; pick another name.`,
        );
      }
      await siteQ.insertToken(tx, { tokenHash: hashToken(token), federationId: fed.id, siteName, expiresAt });
      await emit(tx, 'site.invited', { federationId: fed.id, siteName });
    });
    this.onCommit();
    return { token, expiresAt, siteName, federation: fed };
  }

  /** Enrols a site: checks the token, issues a client certificate for its CSR, records its public keys. */
  async enrol(input: EnrolInput): Promise<EnrolResult> {
    if (input.signingPublicKey.byteLength !== 32 || input.keyWrapPublicKey.byteLength !== 32) {
      throw new InvalidRequestError(
        'Enrolment needs the raw 32-byte Ed25519 signing key and X25519 key-wrap key; upgrade the agent.',
      );
    }
    const tokenHash = hashToken(input.token);
    const token = await siteQ.getToken(this.db, tokenHash);
    if (!token) throw new InvalidTokenError();
    if (token.usedAt) throw new TokenUsedError();
    if (token.expiresAt <= this.now()) throw new TokenExpiredError(token.expiresAt);
    const siteId = newId('st');
    let certificatePem: string;
    try {
      certificatePem = await signCsr(this.ca, input.csrPem, { siteId });
    } catch (err) {
      if (err instanceof InvalidCsrError) {
        throw new InvalidCsrRequestError(
          `The certificate request is not valid (${err.message}); re-run enrolment.`,
          {
            cause: err,
          },
        );
      }
      throw err;
    }
    const enrolling = this.db.transaction(async (tx) => {
      if (!(await siteQ.consumeToken(tx, tokenHash, siteId, this.now()))) throw new TokenUsedError();
      const federation = (await federationQ.getFederation(tx, token.federationId))!;
      // maxSites bounds every HE sum (the quantisation headroom was sized for it): never exceed it.
      const { maxSites } = federationHe(federation);
      if ((await siteQ.listEnrolledSites(tx, federation.id)).length >= maxSites) {
        throw new FederationFullError(federation.name, maxSites);
      }
      const site = await siteQ.insertSite(tx, {
        id: siteId,
        federationId: token.federationId,
        name: token.siteName,
        state: 'enrolled',
        certFingerprint: fingerprint(certificatePem),
        certPem: certificatePem,
        signingPublicKey: Buffer.from(input.signingPublicKey).toString('base64'),
        keyWrapPublicKey: Buffer.from(input.keyWrapPublicKey).toString('base64'),
      });
      await emit(tx, 'site.enrolled', { federationId: token.federationId, siteId, siteName: token.siteName });
      await this.ledger.append(tx, token.federationId, 'site.enrolled', {
        siteId,
        siteName: site.name,
        certificateFingerprint: site.certFingerprint,
        signingPublicKey: site.signingPublicKey,
        keyWrapPublicKey: site.keyWrapPublicKey,
        agentVersion: input.agentVersion ?? '',
      });
      return { site, federation, certificatePem };
    });
    // Another invite for the same name was used first; the rollback leaves this token unused.
    const result = await enrolling.catch(
      onUniqueViolation(UNIQUE.siteName, (cause) => new SiteNameTakenError(token.siteName, { cause })),
    );
    this.onCommit();
    return result;
  }

  async listSites(federationRef: string): Promise<SiteRow[]> {
    const fed = await this.resolve(federationRef);
    return siteQ.listSites(this.db, fed.id);
  }

  /**
   * Revokes a site: its certificate stops working and its later updates are refused. Idempotent: a
   * site already revoked is returned as it is, with no second event or ledger entry.
   */
  async revoke(siteId: string, reason: string): Promise<SiteRow> {
    const row = await this.db.transaction(async (tx) => {
      const site = await siteQ.getSite(tx, siteId);
      if (!site) throw new SiteNotFoundError(siteId);
      if (site.state === 'revoked') return site;
      const revoked = await this.transition(tx, site, 'revoked', {
        revokedReason: reason || 'revoked by the operator',
      });
      // undefined: a concurrent revocation won, and recorded it.
      return revoked ?? (await siteQ.getSite(tx, siteId))!;
    });
    this.onCommit();
    return row;
  }

  /**
   * The one way a site changes state: checks the move is allowed (rounds/states.ts), compare-and-sets
   * the row, and writes the matching event and ledger entry in the same transaction. Returns undefined
   * when a concurrent change moved the site first.
   */
  private async transition(
    tx: Executor,
    site: SiteRow,
    to: SiteState,
    patch: Partial<SiteRow>,
  ): Promise<SiteRow | undefined> {
    if (!canSiteTransition(site.state, to)) {
      throw new IllegalTransitionError(`site ${site.name} cannot go from ${site.state} to ${to}`);
    }
    const row = await siteQ.updateSiteState(tx, site.id, to, patch);
    if (!row) return undefined;
    switch (row.state) {
      case 'revoked': {
        const reason = row.revokedReason ?? '';
        await emit(tx, 'site.revoked', { federationId: row.federationId, siteId: row.id, reason });
        await this.ledger.append(tx, row.federationId, 'site.revoked', { siteId: row.id, reason });
        return row;
      }
      case 'enrolled':
        // Unreachable: no move leads into `enrolled` (enrolment inserts the site).
        return row;
      default:
        return assertNever(row.state);
    }
  }
}

export function federationSpec(row: FederationRow): FederationSpec {
  return { ...(row.spec as Omit<FederationSpec, 'name'>), name: row.name } as FederationSpec;
}

function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
