import { describe, expect, it } from 'vitest';
import {
  type HeKeyBundle,
  keyBundleToProto,
  keyBundleViewFromProto,
  keyEventFromProto,
  receiptFromProto,
  trainingTaskFromProto,
} from './convert.js';

describe('agent proto <-> domain translation', () => {
  it('gives tasks numbers, a hex preset hash and plaintext when no preset is named', () => {
    const task = trainingTaskFromProto({
      roundId: 'r',
      federationId: 'f',
      roundNumber: 3,
      modelVersion: 7n,
      deadline: undefined,
      modelSpec: undefined,
      hePreset: undefined,
      maxSamplesPerSite: 0,
      maxSites: 0,
      maxAbsWeight: 0,
    });
    expect(task).toMatchObject({ modelVersion: 7, hePreset: { name: 'plaintext', presetHash: '' } });
  });

  it('gives receipts a numeric ledger index and a time', () => {
    const receipt = receiptFromProto({
      roundId: 'r',
      siteId: 's',
      updateDigest: Buffer.alloc(32, 1),
      acceptedAt: new Date('2026-01-01T00:00:00Z'),
      ledgerIndex: 12n,
      coordinatorSignature: Buffer.alloc(64, 2),
      duplicate: false,
    });
    expect(receipt.ledgerIndex).toBe(12);
    expect(receipt.acceptedAt.toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });

  it('round-trips a key bundle, the preset hash hex in the domain and bytes on the wire', () => {
    const bundle: HeKeyBundle = {
      federationId: 'f',
      custodianSiteId: 'c',
      presetHash: 'ab'.repeat(32),
      publicParameters: Buffer.from([1, 2, 3]),
      wrappedKeys: [
        {
          siteId: 's',
          ephemeralPublicKey: Buffer.alloc(32, 3),
          nonce: Buffer.alloc(12, 4),
          ciphertext: Buffer.alloc(48, 5),
          wrappedBySiteId: 'c',
          signature: Buffer.alloc(64, 6),
        },
      ],
      custodianSignature: Buffer.alloc(64, 7),
      keyId: 'k',
    };
    const wire = keyBundleToProto(bundle);
    expect(wire.presetHash).toEqual(Buffer.alloc(32, 0xab));
    expect(keyBundleViewFromProto({ bundle: wire, signingPublicKeys: {} }).bundle).toEqual(bundle);
  });

  it('turns key requests into domain key work', () => {
    const event = keyEventFromProto({
      $case: 'keyRequest',
      value: {
        federationId: 'f',
        generate: true,
        recipients: [{ siteId: 's', keyWrapPublicKey: Buffer.alloc(32, 1) }],
        hePreset: {
          name: 'bgv-8192',
          scheme: 'bgv',
          polyModulusDegree: 8192,
          coeffModulusBits: [],
          plainModulus: 0n,
          scale: 0,
          presetHash: Buffer.alloc(32, 0xcd),
        },
      },
    });
    expect(event).toEqual({
      kind: 'request',
      request: {
        federationId: 'f',
        generate: true,
        recipients: [{ siteId: 's', keyWrapPublicKey: Buffer.alloc(32, 1) }],
        hePreset: { name: 'bgv-8192', presetHash: 'cd'.repeat(32) },
      },
    });
  });
});
