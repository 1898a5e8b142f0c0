export type { Aggregator } from './aggregator.js';
export { asFloat64, PlaintextAggregator } from './plaintext.js';
