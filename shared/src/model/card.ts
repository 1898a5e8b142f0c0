/**
 * The signed model card an exported model carries (`README.md`, Hugging Face layout: YAML front
 * matter, then prose). The exporting site signs the whole card with its enrolled Ed25519 key; the
 * card lists the SHA-256 of every other exported file and the sealed round the weights come from,
 * so one signature binds the plaintext weights to a ledger entry the auditor can check.
 */
import { createPublicKey, sign, verify } from 'node:crypto';
import { parse, stringify } from 'yaml';
import { z } from 'zod';

/** File name of the card in an export folder. */
export const MODEL_CARD_FILE = 'README.md';

/** Front-matter key of the signature; its line is the last of the front matter. */
const SIGNATURE_KEY = 'radfed_signature';
const SIGNATURE_PREFIX = 'ed25519:';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

/** What the card's `radfed` block records (the machine-readable part the verifier checks). */
export const modelCardFactsSchema = z.object({
  architecture: z.string(),
  objective: z.string(),
  inputSize: z.number().int().positive(),
  inChannels: z.literal(1),
  standardisation: z.string(),
  format: z.enum(['safetensors', 'tfjs']),
  federationId: z.string().min(1),
  /** SHA-256 of the canonical JSON of the federation's model spec. */
  modelSpecHash: hex64,
  modelVersion: z.number().int().positive(),
  /** Sealed rounds behind this version (its round number). */
  rounds: z.number().int().positive(),
  contributingSites: z.number().int().min(0),
  totalSamples: z.number().int().min(0),
  /** SHA-256 of the aggregate blob (the `round.sealed` entry's `aggregateDigest`). */
  aggregateDigest: hex64,
  /** The `round.sealed` ledger entry, when the coordinator named it. */
  sealedEntry: z.object({ index: z.number().int().min(0), digest: hex64 }).optional(),
  hePreset: z.string(),
  hePresetHash: z.string(),
  /** Largest error the fixed-point HE encoding can add to an averaged weight. */
  quantisationErrorBound: z.number().min(0),
  /** Metrics this site reported with its updates, by round number. */
  siteMetrics: z.record(z.string(), z.record(z.string(), z.number())),
  exportingSite: z.object({ siteId: z.string().min(1), siteName: z.string() }),
  /** SHA-256 (hex) of every other exported file, by file name. */
  files: z.record(z.string(), hex64),
});

export type ModelCardFacts = z.infer<typeof modelCardFactsSchema>;

/** Builds the card text (front matter + `prose`) and signs it with `signingKeyPem` (PKCS#8). */
export function signedModelCard(
  frontMatter: Record<string, unknown> & { radfed: ModelCardFacts },
  prose: string,
  signingKeyPem: string,
): string {
  // A signature carried over from a card being re-signed is not part of what is signed.
  const { [SIGNATURE_KEY]: _previous, ...fields } = frontMatter;
  const unsigned = `---\n${stringify(fields, { lineWidth: 0 })}---\n\n${prose}`;
  const signature = sign(null, Buffer.from(unsigned, 'utf8'), signingKeyPem).toString('base64');
  return withSignatureLine(unsigned, `${SIGNATURE_KEY}: "${SIGNATURE_PREFIX}${signature}"\n`);
}

function withSignatureLine(unsigned: string, line: string): string {
  const end = unsigned.indexOf('\n---\n', 4);
  return `${unsigned.slice(0, end + 1)}${line}${unsigned.slice(end + 1)}`;
}

export interface ParsedModelCard {
  facts: ModelCardFacts;
  /** Raw 64-byte Ed25519 signature. */
  signature: Buffer;
  /** The bytes the signature covers: the card without its signature line. */
  signed: Buffer;
}

/** Why a card cannot be read, as a sentence; thrown by {@link parseModelCard}. */
export class ModelCardFormatError extends Error {
  override name = 'ModelCardFormatError';
}

/** Reads a card's facts and signature. @throws ModelCardFormatError naming what is wrong. */
export function parseModelCard(text: string): ParsedModelCard {
  if (!text.startsWith('---\n')) throw new ModelCardFormatError('the card has no YAML front matter');
  const end = text.indexOf('\n---\n', 3);
  if (end === -1) throw new ModelCardFormatError('the card front matter is not closed by "---"');
  const lines = text.slice(4, end + 1).split('\n');
  const at = lines.findIndex((line) => line.startsWith(`${SIGNATURE_KEY}:`));
  if (at === -1) throw new ModelCardFormatError(`the card is not signed (no ${SIGNATURE_KEY})`);
  const signatureLine = `${lines[at]}\n`;
  const start = 4 + lines.slice(0, at).reduce((n, line) => n + line.length + 1, 0);
  const signed = Buffer.from(text.slice(0, start) + text.slice(start + signatureLine.length), 'utf8');
  let front: unknown;
  try {
    front = parse(text.slice(4, end + 1));
  } catch (err) {
    throw new ModelCardFormatError(`the card front matter is not YAML: ${(err as Error).message}`);
  }
  const value = (front as Record<string, unknown> | null)?.[SIGNATURE_KEY];
  if (typeof value !== 'string' || !value.startsWith(SIGNATURE_PREFIX)) {
    throw new ModelCardFormatError(`${SIGNATURE_KEY} is not "${SIGNATURE_PREFIX}<base64>"`);
  }
  const facts = modelCardFactsSchema.safeParse((front as Record<string, unknown>).radfed);
  if (!facts.success) {
    throw new ModelCardFormatError(`the card's radfed block is malformed: ${z.prettifyError(facts.error)}`);
  }
  return {
    facts: facts.data,
    signature: Buffer.from(value.slice(SIGNATURE_PREFIX.length), 'base64'),
    signed,
  };
}

/** True when `card`'s signature verifies under the raw 32-byte Ed25519 `publicKey`. */
export function modelCardSignedBy(card: ParsedModelCard, publicKey: Uint8Array): boolean {
  const key = createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(publicKey)]),
    format: 'der',
    type: 'spki',
  });
  return card.signature.length === 64 && verify(null, card.signed, key, card.signature);
}
