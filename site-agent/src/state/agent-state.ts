/**
 * The agent's state directory: its enrolment and private keys. Private keys are made here and
 * never leave this directory (the coordinator only ever sees the CSR and public keys).
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { AgentStateError, NotEnrolledError } from '../errors.js';

const enrolmentSchema = z.object({
  coordinator: z.string(),
  siteId: z.string(),
  siteName: z.string(),
  federationId: z.string(),
  enrolledAt: z.string(),
});

export type Enrolment = z.infer<typeof enrolmentSchema>;

export interface AgentIdentity extends Enrolment {
  caCertPem: string;
  certPem: string;
  tlsKeyPem: string;
  signingKeyPem: string;
  keyWrapKeyPem: string;
}

const FILES = {
  enrolment: 'enrolment.json',
  ca: 'ca.crt',
  cert: 'site.crt',
  tlsKey: 'site.key',
  signingKey: 'signing.key',
  keyWrapKey: 'key-wrap.key',
} as const;

export function isEnrolled(stateDir: string): boolean {
  return existsSync(join(stateDir, FILES.enrolment));
}

export async function saveIdentity(stateDir: string, id: AgentIdentity): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await chmod(stateDir, 0o700);
  const secret = async (name: string, data: string) => atomicWrite(join(stateDir, name), data, 0o600);
  await secret(FILES.tlsKey, id.tlsKeyPem);
  await secret(FILES.signingKey, id.signingKeyPem);
  await secret(FILES.keyWrapKey, id.keyWrapKeyPem);
  await atomicWrite(join(stateDir, FILES.ca), id.caCertPem, 0o644);
  await atomicWrite(join(stateDir, FILES.cert), id.certPem, 0o644);
  const enrolment: Enrolment = {
    coordinator: id.coordinator,
    siteId: id.siteId,
    siteName: id.siteName,
    federationId: id.federationId,
    enrolledAt: id.enrolledAt,
  };
  // Written last: its presence means the enrolment is complete.
  await atomicWrite(join(stateDir, FILES.enrolment), `${JSON.stringify(enrolment, null, 2)}\n`, 0o600);
}

export async function loadIdentity(stateDir: string): Promise<AgentIdentity> {
  if (!isEnrolled(stateDir)) throw new NotEnrolledError(stateDir);
  const read = (name: string) => readFile(join(stateDir, name), 'utf8');
  let enrolment: Enrolment;
  try {
    enrolment = enrolmentSchema.parse(JSON.parse(await read(FILES.enrolment)));
  } catch (err) {
    throw new AgentStateError(
      `${join(stateDir, FILES.enrolment)} is damaged; enrol again into a fresh --state-dir.`,
      {
        cause: err,
      },
    );
  }
  return {
    ...enrolment,
    caCertPem: await read(FILES.ca),
    certPem: await read(FILES.cert),
    tlsKeyPem: await read(FILES.tlsKey),
    signingKeyPem: await read(FILES.signingKey),
    keyWrapKeyPem: await read(FILES.keyWrapKey),
  };
}

/** Writes via a temporary file and rename, so a crash never leaves a half-written file. */
export async function atomicWrite(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}
