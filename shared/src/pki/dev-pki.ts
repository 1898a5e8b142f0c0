import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { IncompleteDevPkiError } from '../errors.js';
import { type CertificateAuthority, createCertificateAuthority, issueCertificate } from './ca.js';

/** A certificate and its private key: where they are on disk and what they hold (PEM). */
export interface PemPair {
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
}

/** The files of a development PKI directory. */
export interface DevPki {
  dir: string;
  /** True when this call generated the files, false when it loaded existing ones. */
  created: boolean;
  ca: PemPair;
  /** The coordinator's TLS server certificate. */
  coordinator: PemPair;
  /** Client certificate for the admin CLI: CN=operator, OU=operator. */
  operator: PemPair;
  /** Client certificate for the audit CLI: CN=auditor, OU=auditor. */
  auditor: PemPair;
}

/** Options for {@link initDevPki}. */
export interface InitDevPkiOptions {
  /**
   * Extra DNS names or IP addresses for the coordinator certificate, besides `localhost`, `127.0.0.1`
   * and `::1`. Only used when the files are generated.
   */
  hosts?: string[];
}

const NAMES = ['ca', 'coordinator', 'operator', 'auditor'] as const;
type Name = (typeof NAMES)[number];

/**
 * Loads the development PKI in `dir`, or creates it when `dir` holds none of its files: a CA, a
 * coordinator server certificate and operator and auditor client certificates, written as
 * `<name>.crt` / `<name>.key`. Idempotent; existing files are never rewritten (delete the directory to
 * start over).
 *
 * Security: the directory is made 0700 and keys are written 0600 with exclusive create, so a second
 * process racing this one fails instead of overwriting a CA key. `ca.key` can mint any role: this is
 * for development and tests, not a production CA.
 *
 * @throws IncompleteDevPkiError when only some of the eight files exist.
 */
export async function initDevPki(dir: string, opts: InitDevPkiOptions = {}): Promise<DevPki> {
  const paths = Object.fromEntries(
    NAMES.map((name) => [name, { certPath: join(dir, `${name}.crt`), keyPath: join(dir, `${name}.key`) }]),
  ) as Record<Name, { certPath: string; keyPath: string }>;
  const files = NAMES.flatMap((name) => [paths[name].certPath, paths[name].keyPath]);
  const present = await Promise.all(files.map(exists));
  if (present.every(Boolean)) {
    const load = async (name: Name): Promise<PemPair> => ({
      ...paths[name],
      certPem: await readFile(paths[name].certPath, 'utf8'),
      keyPem: await readFile(paths[name].keyPath, 'utf8'),
    });
    return {
      dir,
      created: false,
      ca: await load('ca'),
      coordinator: await load('coordinator'),
      operator: await load('operator'),
      auditor: await load('auditor'),
    };
  }
  if (present.some(Boolean)) {
    const missing = files.filter((_, i) => !present[i]);
    throw new IncompleteDevPkiError(
      `${dir} holds part of a dev PKI; missing ${missing.join(', ')}. Remove the directory to regenerate it.`,
    );
  }

  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir leaves an existing directory's mode alone; this one is about to hold a CA key.
  await chmod(dir, 0o700);
  const ca: CertificateAuthority = await createCertificateAuthority({ commonName: 'RadFed Dev CA' });
  const hosts = opts.hosts ?? [];
  const coordinator = await issueCertificate(ca, {
    commonName: 'coordinator',
    role: 'coordinator',
    subjectAltNames: {
      dns: unique(['localhost', ...hosts.filter((h) => !isIpLiteral(h))]),
      ip: unique(['127.0.0.1', '::1', ...hosts.filter(isIpLiteral)]),
    },
  });
  const operator = await issueCertificate(ca, { commonName: 'operator', role: 'operator' });
  const auditor = await issueCertificate(ca, { commonName: 'auditor', role: 'auditor' });

  const save = async (name: Name, certPem: string, keyPem: string): Promise<PemPair> => {
    await writeFile(paths[name].certPath, certPem, { mode: 0o644, flag: 'wx' });
    await writeFile(paths[name].keyPath, keyPem, { mode: 0o600, flag: 'wx' });
    return { ...paths[name], certPem, keyPem };
  };
  return {
    dir,
    created: true,
    ca: await save('ca', ca.certPem, ca.keyPem),
    coordinator: await save('coordinator', coordinator.certPem, coordinator.keyPem),
    operator: await save('operator', operator.certPem, operator.keyPem),
    auditor: await save('auditor', auditor.certPem, auditor.keyPem),
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

function isIpLiteral(host: string): boolean {
  return isIP(host) !== 0;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
