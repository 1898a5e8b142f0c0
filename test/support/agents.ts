/**
 * Site agents wired as `radfed-agent run` wires them, driven from a test: enrolled through the real
 * Enrol RPC (keys made in the agent's state directory), a SiteClient over mutual TLS, and the site's
 * own HE keyring doing key work on the task stream.
 */
import { join } from 'node:path';
import type { OperatorClient } from '@radfed/coordinator';
import { silentLogger } from '@radfed/shared';
import { SiteHe } from '@radfed/shared/he-site';
import { type AgentIdentity, enrol, HeKeyring, SiteClient } from '@radfed/site-agent';

/** One enrolled site. */
export interface TestAgent {
  name: string;
  id: AgentIdentity;
  stateDir: string;
  client: SiteClient;
  keyring: HeKeyring;
  /** Opens the task stream; key requests it carries are served by `keyring`, as the agent does. */
  connect(): void;
  /** Cancels the task stream opened by `connect` (no-op if none). */
  disconnect(): void;
}

/** Where the agents enrol: an in-process or child-process coordinator. */
export interface AgentCoordinator {
  address: string;
  caPem: string;
  op: OperatorClient;
}

/** A site enrolled through the real Enrol RPC, with a SiteClient over mutual TLS (the caller closes it). */
export interface EnrolledSite {
  id: AgentIdentity;
  client: SiteClient;
  stateDir: string;
}

/** Invites `name` to the federation and enrols it with the invitation's token, its keys in `stateDir`. */
export async function enrolSite(
  coordinator: AgentCoordinator,
  federationId: string,
  name: string,
  stateDir: string,
): Promise<EnrolledSite> {
  const { address, caPem, op } = coordinator;
  const { token } = await op.inviteSite(federationId, name);
  const id = await enrol({ coordinator: address, caCertPem: caPem, token, stateDir });
  const client = new SiteClient(address, { caCertPem: caPem, certPem: id.certPem, keyPem: id.tlsKeyPem });
  return { id, client, stateDir };
}

/** Makes agents for a suite and closes them all at its end. */
export class TestAgents {
  private readonly agents: TestAgent[] = [];
  private readonly he: SiteHe;
  private readonly ownsHe: boolean;

  /**
   * @param dir parent of the agents' state directories (`dir/<federation>/<site>`).
   * @param he the sites' HE engine (shared by every agent here); default: one worker thread, closed
   *   by {@link closeAll}.
   */
  constructor(
    private readonly coordinator: AgentCoordinator,
    private readonly dir: string,
    he?: SiteHe,
  ) {
    this.he = he ?? new SiteHe(1);
    this.ownsHe = he === undefined;
  }

  /** Invites `name` to the federation and enrols it with the invitation's token. */
  async enrol(federationId: string, name: string): Promise<TestAgent> {
    const { id, client, stateDir } = await enrolSite(
      this.coordinator,
      federationId,
      name,
      join(this.dir, federationId, name),
    );
    const keyring = new HeKeyring({
      client,
      he: this.he,
      stateDir,
      siteId: id.siteId,
      signingKeyPem: id.signingKeyPem,
      keyWrapKeyPem: id.keyWrapKeyPem,
      log: silentLogger,
    });
    let stream: { cancel(): void } | undefined;
    const agent: TestAgent = {
      name,
      id,
      stateDir,
      client,
      keyring,
      connect: () => {
        stream?.cancel();
        stream = client.watchTasks(
          { agentVersion: 'test', backend: 'none' },
          () => {},
          () => {},
          (event) => void keyring.onKeyEvent(event),
        );
      },
      disconnect: () => {
        stream?.cancel();
        stream = undefined;
      },
    };
    this.agents.push(agent);
    return agent;
  }

  /** Disconnects and closes every agent made here. */
  async closeAll(): Promise<void> {
    for (const a of this.agents.splice(0)) {
      a.disconnect();
      a.client.close();
    }
    if (this.ownsHe) await this.he.close();
  }
}
