export type { Aggregator } from './aggregator.js';
export { EncryptedAggregator, encryptedEncoding } from './encrypted.js';
export { asFloat64, PlaintextAggregator } from './plaintext.js';
export {
  type AggregatorRegistry,
  PresetAggregators,
  singleAggregator,
  updateEncoding,
} from './registry.js';
