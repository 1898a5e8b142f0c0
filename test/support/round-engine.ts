/**
 * The coordinator's round engine and federation service over a given database and blob directory,
 * wired as `startCoordinator` wires them but with a clock the test moves and no gRPC, relay or
 * timer: the test drives `engine.tick()` itself. Plaintext aggregation; HE folding has its own suites.
 */
import {
  type DatabaseHandle,
  FederationService,
  Ledger,
  LocalBlobStore,
  PlaintextAggregator,
  RoundEngine,
  singleAggregator,
} from '@radfed/coordinator/testing';
import {
  builtinModelSpec,
  type CertificateAuthority,
  createCsr,
  generateKeyWrapKeyPair,
  generateSigningKeyPair,
  silentLogger,
} from '@radfed/shared';

export interface EngineParts {
  engine: RoundEngine;
  feds: FederationService;
  blobs: LocalBlobStore;
}

/** A clock the test sets and advances. */
export class TestClock {
  constructor(private at = new Date('2026-01-01T00:00:00Z')) {}
  readonly now = (): Date => this.at;
  advance(ms: number): void {
    this.at = new Date(this.at.getTime() + ms);
  }
}

export function buildEngine(
  handle: DatabaseHandle,
  o: { blobDir: string; ca: CertificateAuthority; clock: TestClock },
): EngineParts {
  const coordinatorKey = generateSigningKeyPair();
  const blobs = new LocalBlobStore({ root: o.blobDir });
  const ledger = new Ledger({
    signingKey: { privateKeyPem: coordinatorKey.privateKeyPem, publicKeyRaw: coordinatorKey.publicKeyRaw },
    now: o.clock.now,
  });
  const engine = new RoundEngine({
    db: handle.db,
    blobs,
    aggregators: singleAggregator(new PlaintextAggregator()),
    ledger,
    log: silentLogger,
    now: o.clock.now,
  });
  const feds = new FederationService(handle.db, o.ca, ledger, () => {}, o.clock.now);
  return { engine, feds, blobs };
}

/** The small reference model: its 132,160 parameters keep plaintext updates around 1 MB. */
export const tinySpec = () => ({ ...builtinModelSpec('dense-ae-32') });

/** Invites and enrols `site` with fresh keys, as an agent's Enrol call would. */
export async function enrolSite(
  feds: FederationService,
  federationId: string,
  site: string,
): ReturnType<FederationService['enrol']> {
  const { token } = await feds.invite(federationId, site);
  const csr = await createCsr({ commonName: site });
  return feds.enrol({
    token,
    csrPem: csr.csrPem,
    signingPublicKey: generateSigningKeyPair().publicKeyRaw,
    keyWrapPublicKey: generateKeyWrapKeyPair().publicKeyRaw,
  });
}

/** A plaintext update: every weight `value`, weighted by `n` samples (float64, as sites send it). */
export function plainUpdate(params: number, value: number, n: number): Uint8Array {
  return new Uint8Array(new Float64Array(params).fill(value * n).buffer);
}
