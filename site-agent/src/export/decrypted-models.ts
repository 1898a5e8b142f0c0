/**
 * Decrypted global models the site keeps (the shared weights of a version and the header facts it
 * came with), so `model export` can work from a copy the agent already decrypted without the
 * coordinator. Kept under the state directory with the site's other secrets (mode 0600).
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { atomicWrite } from '../state/agent-state.js';
import type { ModelInfo } from '../transport/convert.js';

const DIR = 'models';

const metaSchema = z.object({
  federationId: z.string(),
  modelVersion: z.number().int(),
  totalSamples: z.number(),
  siteCount: z.number(),
  /** Hex SHA-256 of the (encrypted) aggregate the weights were decrypted from. */
  aggregateDigest: z.string(),
  encoding: z.string(),
});

export type DecryptedModelMeta = z.infer<typeof metaSchema>;

export interface DecryptedModel {
  meta: DecryptedModelMeta;
  /** The shared weights (the average), in spec order of the shared tensors. */
  shared: Float32Array;
}

const base = (stateDir: string, federationId: string, version: number) =>
  join(stateDir, DIR, `${federationId}-v${version}`);

/** Keeps a decrypted version. */
export async function saveDecryptedModel(
  stateDir: string,
  federationId: string,
  header: ModelInfo,
  shared: Float32Array,
): Promise<void> {
  const version = Number(header.modelVersion);
  const meta: DecryptedModelMeta = {
    federationId,
    modelVersion: version,
    totalSamples: Number(header.totalSamples),
    siteCount: header.siteCount,
    aggregateDigest: Buffer.from(header.sha256).toString('hex'),
    encoding: header.encoding,
  };
  const path = base(stateDir, federationId, version);
  await mkdir(join(stateDir, DIR), { recursive: true, mode: 0o700 });
  await atomicWrite(
    `${path}.bin`,
    new Uint8Array(shared.buffer, shared.byteOffset, shared.byteLength),
    0o600,
  );
  await atomicWrite(`${path}.json`, JSON.stringify(meta), 0o600);
  // One version per federation is enough (export falls back to the newest); models are large.
  const prefix = `${federationId}-v`;
  for (const name of await readdir(join(stateDir, DIR))) {
    const kept = name === `${federationId}-v${version}.bin` || name === `${federationId}-v${version}.json`;
    if (name.startsWith(prefix) && !kept) await rm(join(stateDir, DIR, name), { force: true });
  }
}

/** A kept version, or undefined. */
export async function loadDecryptedModel(
  stateDir: string,
  federationId: string,
  version: number,
): Promise<DecryptedModel | undefined> {
  const path = base(stateDir, federationId, version);
  try {
    const meta = metaSchema.parse(JSON.parse(await readFile(`${path}.json`, 'utf8')));
    const bytes = await readFile(`${path}.bin`);
    return { meta, shared: new Float32Array(new Uint8Array(bytes).buffer) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The highest kept version of a federation, or 0. */
export async function highestDecryptedVersion(stateDir: string, federationId: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(join(stateDir, DIR));
  } catch {
    return 0;
  }
  const prefix = `${federationId}-v`;
  return names
    .filter((n) => n.startsWith(prefix) && n.endsWith('.json'))
    .map((n) => Number(n.slice(prefix.length, -'.json'.length)))
    .filter(Number.isInteger)
    .reduce((a, b) => Math.max(a, b), 0);
}
