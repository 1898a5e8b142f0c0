import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import {
  AuditServiceClient,
  type CreateFederationRequest,
  channelCredentials,
  channelOptions,
  type Federation,
  type InviteSiteResponse,
  OperatorServiceClient,
  type Round,
  RpcError,
  type Site,
  type TlsMaterial,
  unaryCall,
  type WatchRoundsResponse,
} from '@radfed/proto';
import { ConfigError } from '../errors.js';

export interface OperatorConnection {
  /** host:port of the coordinator. */
  address: string;
  tls: TlsMaterial;
}

/** Reads ca.crt plus `<role>.crt`/`<role>.key` from a PKI directory (the dev PKI layout). */
export function tlsFromPkiDir(dir: string, role: 'operator' | 'auditor' = 'operator'): TlsMaterial {
  const read = (name: string) => {
    try {
      return readFileSync(join(dir, name), 'utf8');
    } catch (err) {
      throw new ConfigError(
        `Cannot read ${join(dir, name)}; point --pki-dir at the directory with ca.crt and ${role}.crt/.key.`,
        { cause: err },
      );
    }
  };
  return { caCertPem: read('ca.crt'), certPem: read(`${role}.crt`), keyPem: read(`${role}.key`) };
}

/** Typed, promise-based OperatorService client; every failure is an RpcError. */
export class OperatorClient {
  private readonly client: OperatorServiceClient;
  readonly audit: AuditServiceClient;

  constructor(conn: OperatorConnection) {
    this.client = new OperatorServiceClient(conn.address, channelCredentials(conn.tls), channelOptions());
    this.audit = new AuditServiceClient(conn.address, channelCredentials(conn.tls), channelOptions());
  }

  close(): void {
    this.client.close();
    this.audit.close();
  }

  async createFederation(req: Partial<CreateFederationRequest> & { name: string }): Promise<Federation> {
    const res = await unaryCall(
      this.client,
      this.client.createFederation,
      {
        modelSpec: undefined,
        hePreset: '',
        minSites: 0,
        roundDeadlineSeconds: 0,
        maxSamplesPerSite: 0,
        maxSites: 0,
        maxAbsWeight: 0,
        ...req,
      },
      new Metadata(),
    );
    return res.federation!;
  }

  async listFederations(): Promise<Federation[]> {
    return (await unaryCall(this.client, this.client.listFederations, {}, new Metadata())).federations;
  }

  async getFederation(federationId: string): Promise<Federation> {
    return (await unaryCall(this.client, this.client.getFederation, { federationId }, new Metadata()))
      .federation!;
  }

  inviteSite(federationId: string, siteName: string, ttlSeconds = 0): Promise<InviteSiteResponse> {
    return unaryCall(
      this.client,
      this.client.inviteSite,
      { federationId, siteName, ttlSeconds },
      new Metadata(),
    );
  }

  async listSites(federationId: string): Promise<Site[]> {
    return (await unaryCall(this.client, this.client.listSites, { federationId }, new Metadata())).sites;
  }

  async revokeSite(siteId: string, reason: string): Promise<Site> {
    return (await unaryCall(this.client, this.client.revokeSite, { siteId, reason }, new Metadata())).site!;
  }

  async scheduleRounds(federationId: string, count: number): Promise<Round[]> {
    return (await unaryCall(this.client, this.client.scheduleRounds, { federationId, count }, new Metadata()))
      .rounds;
  }

  async listRounds(federationId: string): Promise<Round[]> {
    return (await unaryCall(this.client, this.client.listRounds, { federationId }, new Metadata())).rounds;
  }

  async getRound(roundId: string): Promise<Round> {
    return (await unaryCall(this.client, this.client.getRound, { roundId }, new Metadata())).round!;
  }

  /** Designates the site (id or name) that generates, or later re-wraps, the federation's HE keys. */
  async setKeyCustodian(federationId: string, site: string): Promise<Federation> {
    return (await unaryCall(this.client, this.client.setKeyCustodian, { federationId, site }, new Metadata()))
      .federation!;
  }

  async cancelRound(roundId: string, reason: string): Promise<Round> {
    return (await unaryCall(this.client, this.client.cancelRound, { roundId, reason }, new Metadata()))
      .round!;
  }

  /** Streams round changes until `signal` aborts or the server ends the stream. */
  async watchRounds(
    federationId: string,
    onUpdate: (u: WatchRoundsResponse) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const call = this.client.watchRounds({ federationId });
    signal?.addEventListener('abort', () => call.cancel());
    await new Promise<void>((resolve, reject) => {
      call.on('data', onUpdate);
      call.on('end', resolve);
      call.on('error', (err: Error & { code?: number }) => {
        if (signal?.aborted || err.code === 1) resolve();
        else reject(RpcError.from(err));
      });
    });
  }
}
