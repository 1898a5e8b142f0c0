import { describe, expect, it } from 'vitest';
import { AgentConfigError } from '../errors.js';
import { loadAgentConfig } from './config.js';

describe('agent configuration', () => {
  it('applies defaults: data check sees images at the default model size (conv4, 64)', () => {
    expect(loadAgentConfig({}, {})).toEqual({ stateDir: '.radfed/agent', logLevel: 'info', imageSize: 64 });
  });

  it('reads the environment once, flags winning, numbers coerced', () => {
    const c = loadAgentConfig(
      { stateDir: '/flag', imageSize: '32' },
      {
        RADFED_AGENT_STATE: '/env',
        RADFED_LOG_LEVEL: 'debug',
        RADFED_TRAIN_WORKERS: '3',
        RADFED_TFJS_BACKEND: 'wasm',
        RADFED_HE_THREADS: '2',
      },
    );
    expect(c).toEqual({
      stateDir: '/flag',
      logLevel: 'debug',
      imageSize: 32,
      trainWorkers: 3,
      tfjsBackend: 'wasm',
      heThreads: 2,
    });
  });

  it('names the flag or variable that holds a bad value', () => {
    expect(() => loadAgentConfig({}, { RADFED_HE_THREADS: '0' })).toThrow(/RADFED_HE_THREADS is "0"/);
    expect(() => loadAgentConfig({}, { RADFED_TFJS_BACKEND: 'gpu' })).toThrow(/RADFED_TFJS_BACKEND is "gpu"/);
    expect(() => loadAgentConfig({ logLevel: 'loud' }, {})).toThrow(/--log-level is "loud"/);
    expect(() => loadAgentConfig({ imageSize: 'big' }, {})).toThrow(AgentConfigError);
  });
});
