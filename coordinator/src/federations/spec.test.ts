import { builtinModelSpec } from '@radfed/shared';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CONV4_OBJECTIVE,
  FEDERATION_DEFAULTS,
  newFederationModelSpec,
  parseFederationSpec,
} from './spec.js';

const modelSpec = builtinModelSpec('dense-ae-32');

describe('federation spec defaults', () => {
  it('fills in every setting a request leaves out, from FEDERATION_DEFAULTS', () => {
    const spec = parseFederationSpec({ name: 'f', modelSpec });
    expect(spec).toMatchObject({ hePreset: 'bgv-8192', ...FEDERATION_DEFAULTS });
  });

  it('raises the default maxSites to the quorum, and keeps what the request set', () => {
    expect(parseFederationSpec({ name: 'f', modelSpec, minSites: 150, maxSamplesPerSite: 10 }).maxSites).toBe(
      150,
    );
    expect(parseFederationSpec({ name: 'f', modelSpec, minSites: 3, maxSites: 7 })).toMatchObject({
      minSites: 3,
      maxSites: 7,
      roundDeadlineSeconds: FEDERATION_DEFAULTS.roundDeadlineSeconds,
    });
  });

  it('gives a new federation one default model: conv4 by masked reconstruction, unless told otherwise', () => {
    expect(newFederationModelSpec()).toMatchObject({
      architecture: 'conv4',
      objective: DEFAULT_CONV4_OBJECTIVE,
    });
    expect(DEFAULT_CONV4_OBJECTIVE).toBe('masked-reconstruction');
    expect(newFederationModelSpec('conv4', { objective: 'simclr' }).objective).toBe('simclr');
    expect(newFederationModelSpec('dense-ae-32').objective).toBe('denoising-reconstruction');
  });
});
