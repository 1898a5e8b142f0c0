import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSigningKeyPair, signingPublicKey } from '@radfed/shared';

/** The coordinator's Ed25519 ledger and receipt key. */
export interface CoordinatorSigningKey {
  /** PKCS#8 PEM; never leaves the coordinator. */
  privateKeyPem: string;
  publicKeyRaw: Buffer;
}

/** File name of the key inside the PKI directory. */
export const COORDINATOR_SIGNING_KEY_FILE = 'coordinator-signing.key';

/**
 * Loads `<pkiDir>/coordinator-signing.key`, creating it on first start.
 *
 * Security: written 0600 with exclusive create, so two coordinators starting together never end up
 * signing with different keys (the loser reads the winner's key), and an existing key is never
 * replaced: a new key would make every earlier ledger entry verify against a key nobody pinned.
 */
export async function loadCoordinatorSigningKey(pkiDir: string): Promise<CoordinatorSigningKey> {
  const path = join(pkiDir, COORDINATOR_SIGNING_KEY_FILE);
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const created = generateSigningKeyPair().privateKeyPem;
    try {
      await writeFile(path, created, { mode: 0o600, flag: 'wx' });
      pem = created;
    } catch (raced) {
      if ((raced as NodeJS.ErrnoException).code !== 'EEXIST') throw raced;
      pem = await readFile(path, 'utf8');
    }
  }
  return { privateKeyPem: pem, publicKeyRaw: signingPublicKey(pem) };
}
