import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type ModelCardFacts,
  ModelCardFormatError,
  modelCardSignedBy,
  parseModelCard,
  signedModelCard,
} from './card.js';

const facts: ModelCardFacts = {
  architecture: 'resnet18',
  objective: 'simclr',
  inputSize: 64,
  inChannels: 1,
  standardisation: 'per-image',
  format: 'safetensors',
  federationId: 'fd_1',
  modelSpecHash: 'a'.repeat(64),
  modelVersion: 3,
  rounds: 3,
  contributingSites: 2,
  totalSamples: 40,
  aggregateDigest: 'b'.repeat(64),
  hePreset: 'bgv-8192',
  hePresetHash: 'c'.repeat(64),
  quantisationErrorBound: 1e-6,
  siteMetrics: { '1': { loss: 0.5 } },
  exportingSite: { siteId: 'st_1', siteName: 'hospital-a' },
  files: { 'model.safetensors': 'd'.repeat(64) },
};

describe('model card', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const raw = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);

  it('round-trips its facts and verifies under the signer key only', () => {
    const card = signedModelCard({ license: 'other', radfed: facts }, '# prose\n', pem);
    expect(card.startsWith('---\nlicense: other\n')).toBe(true);
    const parsed = parseModelCard(card);
    expect(parsed.facts).toEqual(facts);
    expect(modelCardSignedBy(parsed, raw)).toBe(true);
    const other = generateKeyPairSync('ed25519')
      .publicKey.export({ type: 'spki', format: 'der' })
      .subarray(-32);
    expect(modelCardSignedBy(parsed, other)).toBe(false);
    expect(modelCardSignedBy(parseModelCard(card.replace('# prose', '# Prose')), raw)).toBe(false);
  });

  it('names what is wrong with an unsigned or malformed card', () => {
    expect(() => parseModelCard('# no front matter')).toThrow(ModelCardFormatError);
    expect(() => parseModelCard('---\nradfed: {}\n---\n')).toThrow(/not signed/);
  });
});
